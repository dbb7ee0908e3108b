#!/usr/bin/env node
// The package registry this project builds from mirrors only the linux-x64/arm64 builds of
// packages that ship one optional package per platform (rollup, msgpackr-extract). `npm
// install` then leaves the other platforms' entries out of package-lock.json, and `npm ci`
// refuses the lock file as "out of sync". This adds the missing entries as optional,
// platform-restricted packages (which npm skips on this platform without fetching them),
// exactly as a full registry would have written them. Run after changing dependencies:
//   node tools/lock-platform-optionals.mjs
import { readFileSync, writeFileSync } from 'node:fs';

const file = new URL('../package-lock.json', import.meta.url);
const lock = JSON.parse(readFileSync(file, 'utf8'));
const pkgs = lock.packages;

/** os and cpu from a platform package name such as "rollup-linux-arm-musleabihf". */
function platformOf(name) {
  const base = name.split('/').pop();
  const osList = ['android', 'darwin', 'freebsd', 'linux', 'openbsd', 'openharmony', 'win32', 'sunos', 'netbsd', 'aix'];
  const cpuMap = { x64: 'x64', arm64: 'arm64', arm: 'arm', ia32: 'ia32', loong64: 'loong64', ppc64: 'ppc64', riscv64: 'riscv64', s390x: 's390x' };
  const parts = base.split('-');
  const os = parts.find((p) => osList.includes(p));
  const cpu = parts.map((p) => cpuMap[p]).find(Boolean);
  const libc = parts.includes('musl') || parts.includes('musleabihf') ? 'musl' : parts.includes('gnu') || parts.includes('gnueabihf') ? 'glibc' : undefined;
  return { os, cpu, libc };
}

let added = 0;
for (const [path, meta] of Object.entries(pkgs)) {
  for (const [dep, spec] of Object.entries(meta.optionalDependencies ?? {})) {
    const prefix = path === '' ? '' : `${path}/`;
    const nested = `${prefix}node_modules/${dep}`;
    const hoisted = `node_modules/${dep}`;
    if (pkgs[nested] || pkgs[hoisted]) continue;
    const { os, cpu, libc } = platformOf(dep);
    if (!os || !cpu) continue;
    pkgs[hoisted] = {
      version: spec.replace(/^[\^~=]/, ''),
      ...(meta.dev ? { dev: true } : {}),
      optional: true,
      os: [os],
      cpu: [cpu],
      ...(libc ? { libc: [libc] } : {}),
    };
    added++;
  }
}
lock.packages = Object.fromEntries(Object.entries(pkgs).sort(([a], [b]) => (a === '' ? -1 : b === '' ? 1 : a.localeCompare(b))));
writeFileSync(file, JSON.stringify(lock, null, 2) + '\n');
console.log(`added ${added} platform entries`);
