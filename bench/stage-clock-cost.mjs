/**
 * What one stage-clock hook (stageBegin + stageEnd around a call) costs, off and on: a tight
 * loop of a tiny function with and without the hooks, CPU ns per call, median of 6 rounds.
 *
 *   npm run build && node bench/stage-clock-cost.mjs                        # off
 *   npm run build && TALLENNE_STAGE_CLOCK=16 node bench/stage-clock-cost.mjs  # on, 1 in 16 timed
 */
const { stageBegin, stageEnd, stageClockOn } = await import(new URL('../dist/stage-clock.js', import.meta.url).href);
const N = 2e7; let acc = 0;
function work(i) { return (i * 31) ^ (i >>> 3); }
function plain() { for (let i = 0; i < N; i++) acc += work(i); }
function hooked() { for (let i = 0; i < N; i++) { const t = stageBegin(6); acc += work(i); stageEnd(6, t); } }
const time = (f) => { const t = process.cpuUsage(); f(); const c = process.cpuUsage(t); return (c.user + c.system) / N * 1000; };
for (let w = 0; w < 2; w++) { plain(); hooked(); }
const r = { plain: [], hooked: [] };
for (let k = 0; k < 6; k++) { r.plain.push(time(plain)); r.hooked.push(time(hooked)); }
const med = (x) => x.sort((a, b) => a - b)[3];
console.log(JSON.stringify({ stageClockOn, nsPerCallPlain: +med(r.plain).toFixed(2), nsPerCallHooked: +med(r.hooked).toFixed(2) }));
