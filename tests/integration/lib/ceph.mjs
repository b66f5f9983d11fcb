// tests/integration/lib/ceph.mjs: a throw-away Ceph cluster (1 monitor + memstore OSDs, cephx) for
// integration tests, through the one start-up recipe in scripts/ceph-local.sh (docs/CLUSTER.md
// "Ceph RADOS"). Stopped by the PIDs that script recorded, however the test process ends.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const cephLocal = path.resolve(here, '../../../scripts/ceph-local.sh');

function run(args, timeout = 600000) {
  const r = spawnSync('bash', [cephLocal, ...args], { encoding: 'utf8', timeout });
  if (r.status !== 0) throw new Error(`ceph-local.sh ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

export class Ceph {
  constructor() {
    // Short: a UNIX socket path under it must fit in 107 bytes.
    this.dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'cf-ceph-')), 'c');
    this.env = {};
    this.onExit = () => this.cleanup();
    process.on('exit', this.onExit);
  }

  /** Starts the monitor and `osds` OSDs; resolves the variables ceph-local.sh writes to DIR/env. */
  start(osds = 3) {
    run(['up', this.dir, String(osds)]);
    for (const line of fs.readFileSync(path.join(this.dir, 'env'), 'utf8').split('\n')) {
      const m = /^(\w+)=(.*)$/.exec(line);
      if (m) this.env[m[1]] = m[2].replace(/^'(.*)'$/, '$1');
    }
    return this;
  }

  get conf() { return this.env.CEPH_CONF; }

  /** A replicated pool (size 3) and a cephx user with caps on it only; returns its `rados:` section. */
  pool(name, user) {
    run(['pool', this.dir, name, '3', user]);
    return { conf: this.conf, pool: name, user, keyring: path.join(this.dir, `client.${user}.keyring`), op_timeout: '30s' };
  }

  /** The rados CLI as client.admin; returns {status, stdout, stderr}. */
  rados(args, opts = {}) {
    return spawnSync('rados', ['--conf', this.conf, '--rados-osd-op-timeout', '60', ...args], { encoding: opts.encoding ?? 'utf8', timeout: 300000, maxBuffer: 1 << 30 });
  }

  /** Every object of pool as "namespace\tname" lines (the default namespace: an empty first field). */
  list(pool) {
    const r = this.rados(['-p', pool, 'ls', '--all']);
    if (r.status !== 0) throw new Error(`rados ls: ${r.stderr}`);
    return r.stdout.split('\n').filter(Boolean);
  }

  /** Copies every object of pool into out (ceph-local.sh dump): out/list, out/NAMESPACE/NAME. */
  dump(pool, out) { run(['dump', this.dir, pool, out]); }

  cleanup() {
    process.off('exit', this.onExit);
    if (!fs.existsSync(this.dir)) return;
    try { run(['down', this.dir]); } catch { /* already down */ }
    fs.rmSync(path.dirname(this.dir), { recursive: true, force: true });
  }
}
