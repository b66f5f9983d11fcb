// tests/integration/lib/pg.mjs: a throw-away PostgreSQL for integration tests, through the one
// implementation in tests/lib/pgtmp.sh (initdb into a temporary directory, its own port on
// 127.0.0.1 and unix socket in that directory, a "coffer" role with a random password for TCP,
// stopped by the PID in its postmaster.pid). docs/CLUSTER.md "PostgreSQL".
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const pgtmp = path.resolve(here, '../../lib/pgtmp.sh');

function run(args) {
  const r = spawnSync(pgtmp, args, { encoding: 'utf8', timeout: 180000 });
  if (r.status !== 0) throw new Error(`pgtmp.sh ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

export class Postgres {
  constructor() {
    this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cf-pg-'));
    this.env = {};
    // Stopped however the test process ends (a failed assertion skips nothing here): pg_ctl
    // daemonises the server, so nothing else would.
    this.onExit = () => this.cleanup();
    process.on('exit', this.onExit);
  }

  /** Starts it (initdb the first time); resolves the variables pgtmp.sh writes to DIR/env. */
  start() {
    const out = run(['start', this.dir]);
    for (const line of out.split('\n')) {
      const m = /^(\w+)=(.*)$/.exec(line);
      if (m) this.env[m[1]] = m[2].replace(/^'(.*)'$/, '$1');
    }
    this.pid = Number(this.env.COFFER_PG_PID);
    return this;
  }

  /** Fast shutdown of exactly this server; returns once it has exited. */
  stop() { run(['stop', this.dir]); }

  /** The connection string over TCP on 127.0.0.1 (password authentication). */
  get tcp() { return this.env.COFFER_PG_TCP; }
  get passwordFile() { return this.env.COFFER_PG_PASSWORD_FILE; }

  /** psql as the superuser over the unix socket; returns stdout (throws on an error). */
  psql(sql, db = 'coffer') {
    const r = spawnSync(this.bin('psql'), ['-h', this.dir, '-p', this.env.PGPORT, '-U', 'postgres', '-d', db, '-XAtq', '-v', 'ON_ERROR_STOP=1', '-c', sql], { encoding: 'utf8', timeout: 120000 });
    if (r.status !== 0) throw new Error(`psql ${sql}: ${r.stderr}`);
    return r.stdout;
  }

  /** pg_dump of the coffer database (plain SQL: bytea as hex), as a string. */
  dump() {
    const r = spawnSync(this.bin('pg_dump'), ['-h', this.dir, '-p', this.env.PGPORT, '-U', 'postgres', '-d', 'coffer'], { encoding: 'utf8', timeout: 300000, maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error(`pg_dump: ${r.stderr}`);
    return r.stdout;
  }

  bin(name) {
    const vers = fs.readdirSync('/usr/lib/postgresql').filter((v) => fs.existsSync(`/usr/lib/postgresql/${v}/bin/${name}`));
    vers.sort((a, b) => Number(b) - Number(a));
    return vers.length ? `/usr/lib/postgresql/${vers[0]}/bin/${name}` : name;
  }

  cleanup() {
    process.off('exit', this.onExit);
    if (!fs.existsSync(this.dir)) return;
    try { this.stop(); } catch { /* already down */ }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
