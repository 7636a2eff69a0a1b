/**
 * A worker that says "held" and exits at once, as one does when its run ends while it
 * boots: the pool, already released, answers "start" to a process that is gone.
 */
process.send?.({ type: "held" }, () => process.exit(0));
