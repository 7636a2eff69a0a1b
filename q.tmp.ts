import { writeTextModel } from "./src/tasks/text-embedding/model-gen/generate.ts";
import { generateCorpus } from "./src/tasks/text-embedding/model-gen/corpus.ts";
import { Tokenizer } from "@huggingface/tokenizers";
import { readFileSync } from "node:fs";
import * as ort from "onnxruntime-node";
const kind = (process.argv[2] ?? "wordpiece") as "wordpiece"|"bpe";
const m = await writeTextModel(`/tmp/tmq-${kind}`, { tokenizer: kind, hidden: Number(process.argv[3] ?? 128), layers: Number(process.argv[4] ?? 2) });
const tok = new Tokenizer(JSON.parse(readFileSync(`/tmp/tmq-${kind}/tokenizer.json`,"utf8")), JSON.parse(readFileSync(`/tmp/tmq-${kind}/tokenizer_config.json`,"utf8")));
const s = await ort.InferenceSession.create(m.onnxPath);
const docs = generateCorpus(400, 3);
const vecs: Float32Array[] = []; let tokens = 0;
const lens: Record<string, number[]> = {};
for (const d of docs) {
  let ids = tok.encode(d.text).ids; if (ids.length > 512) ids = [...ids.slice(0, 511), ids[ids.length-1]!];
  tokens += ids.length; (lens[d.length] ??= []).push(ids.length);
  const n = ids.length;
  const feeds: Record<string, ort.Tensor> = { input_ids: new ort.Tensor("int64", BigInt64Array.from(ids.map(BigInt)), [1,n]), attention_mask: new ort.Tensor("int64", new BigInt64Array(n).fill(1n), [1,n]) };
  if (s.inputNames.includes("token_type_ids")) feeds.token_type_ids = new ort.Tensor("int64", new BigInt64Array(n), [1,n]);
  const o = (await s.run(feeds)).last_hidden_state!.data as Float32Array;
  const H = o.length / n; const v = new Float32Array(H);
  for (let t=0;t<n;t++) for (let j=0;j<H;j++) v[j]+=o[t*H+j]!/n;
  let nn=0; for (const x of v) nn+=x*x; nn=Math.sqrt(nn); for (let j=0;j<H;j++) v[j]/=nn;
  vecs.push(v);
}
let hit=0; const byLen: Record<string,[number,number]> = {}; let sameSum=0, sameN=0, diffSum=0, diffN=0;
for (let i=0;i<docs.length;i++){ let best=-2, bj=-1; for (let j=0;j<docs.length;j++){ if(i===j)continue; let c=0; for(let k=0;k<vecs[i]!.length;k++) c+=vecs[i]![k]!*vecs[j]![k]!; if (docs[i]!.topic===docs[j]!.topic){sameSum+=c;sameN++}else{diffSum+=c;diffN++} if(c>best){best=c;bj=j}} const ok = docs[bj]!.topic===docs[i]!.topic; if(ok)hit++; const b=(byLen[docs[i]!.length]??=[0,0]); b[0]+=ok?1:0; b[1]++; }
console.log(kind, "nn topic acc", hit/docs.length, byLen, "mean cos same", sameSum/sameN, "diff", diffSum/diffN, "tokens", tokens);
for (const [k,v] of Object.entries(lens)) console.log(k, Math.min(...v), Math.round(v.reduce((a,b)=>a+b,0)/v.length), Math.max(...v));
console.log(docs[0]!.text.slice(0,200)); console.log(tok.encode(docs[0]!.text.slice(0,100)).tokens.join(" "));
