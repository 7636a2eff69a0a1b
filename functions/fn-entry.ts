/**
 * The Fn entry point (bundled to dist/functions.cjs): one image serves every
 * function, and the `BATCH_INFER_FUNCTION` config key picks the handler. This
 * file only wires dependencies and calls `fdk.handle`; the handlers are built
 * from injected deps in functions/<name>/handler.ts.
 */
import fdk from "@fnproject/fdk";
import { createFunctionHandler } from "./wiring.ts";

// Fn passes app and function config as environment variables; ctx.getConfig() is broken in fdk 0.0.76.
const handler = createFunctionHandler(process.env);
fdk.handle(handler, { inputMode: "json" });
