/**
 * A worker process that, like the real one, takes a first SIGTERM as "checkpoint and
 * hand back" (here: a short pause, then exit 0) and a second as "exit now" (143).
 * The pool test uses it to see how many stop signals a worker gets.
 */
let signals = 0;
process.on("SIGTERM", () => {
  signals++;
  if (signals > 1) process.exit(143);
  console.log("stopping");
  setTimeout(() => process.exit(0), 300);
});
process.on("disconnect", () => process.exit(0));
process.send?.({ type: "claim", claim: null });
console.log("ready");
setInterval(() => {}, 60_000);
