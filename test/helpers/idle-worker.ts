/**
 * A worker process that takes no work: it reports itself idle to the pool and
 * exits on SIGTERM. The ReplicaTarget conformance suite scales a pool of these.
 */
process.send?.({ type: "claim", claim: null });
process.on("SIGTERM", () => process.exit(0));
process.on("disconnect", () => process.exit(0));
setInterval(() => {}, 60_000);
