/** The parts of @fnproject/fdk (0.0.76, untyped) this project uses. */
declare module "@fnproject/fdk" {
  /** Per-call context. */
  export interface Context {
    readonly config: Record<string, string>;
    readonly callID: string;
    readonly deadline: Date;
    responseContentType: string;
    setResponseHeader(key: string, ...values: string[]): void;
  }
  /** Serve `fn` over the Fn http-stream contract (FN_FORMAT, FN_LISTENER); returns a stop function. */
  export function handle(
    fn: (input: unknown, ctx: Context) => unknown,
    options?: { inputMode?: "json" | "string" | "buffer" },
  ): () => void;
  const fdk: { handle: typeof handle };
  export default fdk;
}
