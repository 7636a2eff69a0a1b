import { NotFoundError, PreconditionFailedError } from "../core/errors.ts";
import type { ObjectStore } from "../ports/object-store.ts";

/** Where the scaler keeps its last-active time between invocations (functions are stateless). */
export interface ScalerState {
  get(): Promise<number | undefined>;
  set(lastActiveAt: number | undefined): Promise<void>;
}

/**
 * Scaler state as one small object. Writes are conditional on the etag read, so
 * two overlapping invocations can't roll the time back; the loser keeps the
 * winner's value (both computed it from the same queue depth).
 */
export function objectStoreScalerState(
  store: ObjectStore,
  bucket: string,
  name = "scaler/state.json",
): ScalerState {
  let etag: string | undefined;
  return {
    async get() {
      const info = await store.head(bucket, name);
      if (!info) {
        etag = undefined;
        return undefined;
      }
      etag = info.etag;
      try {
        const chunks: Buffer[] = [];
        for await (const c of await store.read(bucket, name)) chunks.push(c as Buffer);
        const v = (JSON.parse(Buffer.concat(chunks).toString("utf8")) as { lastActiveAt?: unknown })
          .lastActiveAt;
        return typeof v === "number" ? v : undefined;
      } catch (err) {
        if (err instanceof NotFoundError) return undefined;
        throw err;
      }
    },
    async set(lastActiveAt) {
      const body = JSON.stringify({ lastActiveAt: lastActiveAt ?? null });
      try {
        await store.put(
          bucket,
          name,
          body,
          etag ? { ifMatch: etag, contentType: "application/json" } : { ifNoneMatch: "*" },
        );
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
      }
    },
  };
}
