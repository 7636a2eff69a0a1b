/**
 * The chaining check for CSV partitions read with quote speculation.
 *
 * A worker reading partition i > 0 does not know whether its start lies inside a quoted
 * field, so it guesses "outside" (see csv-record-reader.ts) and reports the first record
 * start it took and the offset after its last record (ReadStats). Partition 0 starts at
 * dataStart, a known record start. Record parsing from a known record start is exact and
 * deterministic, so by induction: if partition i's next record start is right and
 * partition i+1 took exactly that offset as its first record start, partition i+1's
 * records and next record start are right too. Where the two disagree, partition i+1 is
 * re-read from partition i's next record start (now known to be a record start), which
 * may move its own next record start, so the check walks on down the chain. Each round
 * fixes the first disagreement for good, so at most P-1 re-reads; one in practice.
 */
import { InvalidArgumentError } from "../core/errors.ts";

/** What one partition's read found (from ReadStats), in partition order. */
export interface ChainLink {
  /** First record start the read took (speculated unless read from a known record start). */
  firstRecordStart: number;
  /** Offset just past the partition's last owned record (firstRecordStart when it owns none). */
  nextRecordStart: number;
}

/** A partition to read again, from a known record start (`fromIsRecordStart: true`). */
export interface ChainBreak {
  /** Index of the partition whose records are wrong. */
  index: number;
  /** Where its first record really starts: its predecessor's next record start. */
  from: number;
}

/**
 * The first partition whose first record start disagrees with its predecessor's next
 * record start (partition 0 with dataStart), or undefined when the chain holds and every
 * partition's records are exactly the object's records. Pure; reads nothing.
 */
export function findChainBreak(
  links: readonly ChainLink[],
  dataStart: number,
): ChainBreak | undefined {
  let expected = dataStart;
  for (let i = 0; i < links.length; i++) {
    const link = links[i] as ChainLink;
    const known = (offset: number) => Number.isSafeInteger(offset) && offset >= 0;
    if (!known(link.firstRecordStart) || !known(link.nextRecordStart)) {
      throw new InvalidArgumentError(
        `partition ${i} has no record starts (${link.firstRecordStart}, ${link.nextRecordStart}): read it to the end before the chaining check`,
      );
    }
    if (link.firstRecordStart !== expected) return { index: i, from: expected };
    expected = link.nextRecordStart;
  }
  return undefined;
}

/**
 * Run the chaining check to a fixed point: find the first break, re-read that partition
 * from the record start it should have used (`reread` returns its new link, and must
 * replace what the old read produced), repeat. Returns the re-reads made, in order.
 * Throws if a re-read does not start where it was told to (a reader bug) or the chain
 * does not settle within links.length rounds (it always does: each round fixes one
 * partition for good).
 */
export async function resolveChain(
  links: ChainLink[],
  dataStart: number,
  reread: (index: number, from: number) => Promise<ChainLink>,
): Promise<ChainBreak[]> {
  const rereads: ChainBreak[] = [];
  for (let round = 0; round <= links.length; round++) {
    const broken = findChainBreak(links, dataStart);
    if (!broken) return rereads;
    const link = await reread(broken.index, broken.from);
    if (link.firstRecordStart !== broken.from) {
      throw new InvalidArgumentError(
        `partition ${broken.index} was re-read from ${link.firstRecordStart}, not ${broken.from}: re-read it with from = ${broken.from} and fromIsRecordStart = true`,
      );
    }
    links[broken.index] = link;
    rereads.push(broken);
  }
  throw new InvalidArgumentError(
    `the partition chain did not settle within ${links.length} rounds: the reads do not follow the boundary rule`,
  );
}
