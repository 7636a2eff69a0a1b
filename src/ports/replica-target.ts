/**
 * Port: the thing the scaler sizes (the OKE worker Deployment's scale
 * subresource; a pool of worker child processes locally).
 */
export interface ReplicaTarget {
  /** Replicas asked for now. */
  current(): Promise<number>;
  /** Ask for `replicas`; scale-down stops idle workers first and lets busy ones hand back. */
  scaleTo(replicas: number): Promise<void>;
}
