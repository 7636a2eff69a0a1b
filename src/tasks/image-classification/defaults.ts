/** Image-task defaults, apart from the modules that load sharp (the splitter needs only these). */

/**
 * Images per checkpoint (and per part object) unless the job says otherwise. Rows'
 * 50,000 would be minutes of decoding and inference per chunk on CPU; 256 images
 * are a second or two on the shapes model and ~30 s on a ResNet-50-sized one, so a
 * killed worker loses little and a part stays a few KB to a few MB.
 */
export const IMAGE_CHECKPOINT_EVERY = 256;

/** Images per onnxruntime call unless the job says otherwise. */
export const DEFAULT_IMAGE_BATCH = 32;

/** Images decoded at once per block (size UV_THREADPOOL_SIZE to match). */
export const DEFAULT_DECODE_CONCURRENCY = 4;
