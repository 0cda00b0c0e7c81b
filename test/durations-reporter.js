// A node:test reporter used by test/run.js beside the spec reporter: it writes one JSON line per
// test file (its wall time from dequeue to completion, and its counts) to its destination.
export default async function* durations(source) {
  const files = new Map();
  const entry = (f) => {
    if (!files.has(f)) files.set(f, { file: f, startedAt: undefined, ms: undefined, passed: 0, failed: 0, skipped: 0 });
    return files.get(f);
  };
  for await (const e of source) {
    const d = e.data ?? {};
    if (!d.file) continue;
    const f = entry(d.file);
    const isFile = d.name === d.file;
    if (e.type === 'test:dequeue' && isFile) f.startedAt = Date.now();
    else if (e.type === 'test:complete' && isFile) f.ms = d.details?.duration_ms ?? (f.startedAt ? Date.now() - f.startedAt : undefined);
    else if (e.type === 'test:pass' && !isFile) d.skip || d.todo ? f.skipped++ : f.passed++;
    else if (e.type === 'test:fail' && !isFile) f.failed++;
  }
  for (const f of files.values()) yield JSON.stringify({ file: f.file, ms: f.ms, passed: f.passed, failed: f.failed, skipped: f.skipped }) + '\n';
}
