/**
 * An integer with thousands separators ("1,234,567"), as `toLocaleString("en-US")`
 * writes it, without ICU: its first use loads locale data, ~12 ms of a CLI run or a
 * job's merge.
 */
export function thousands(n: number): string {
  return String(Math.round(n)).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}
