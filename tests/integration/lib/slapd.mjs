// A throw-away OpenLDAP server for the directory tests (issue 23): Debian's slapd, its own temp
// directory, a slapd.conf (mdb backend), LDAPS only, on 127.0.0.1 with a port of its own, with a
// test CA and a server certificate made by openssl at test time. Loaded with slapadd before it
// starts (slapadd stamps entryUUID like a live add); also plain ldap:// on a second port (plainUrl,
// for StartTLS). Started in the foreground (-d 256: the access log on stderr) and stopped
// by its PID. Ready means ldapsearch gets an answer: no fixed sleeps.
//
//   const ldap = await Slapd.start();          // ldap.url, ldap.caFile, ldap.base ...
//   ldap.modify(ldif)                          // ldapmodify as the root DN
//   await ldap.stop()  /  ldap.kill()          // SIGTERM / SIGKILL, by PID
import { spawn, spawnSync, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import net from 'node:net';

export const SUFFIX = 'dc=example,dc=org';
export const ROOT_DN = `cn=admin,${SUFFIX}`;
export const ROOT_PW = 'root-secret-1';
export const SERVICE_DN = `cn=coffer,ou=services,${SUFFIX}`;
export const SERVICE_PW = 'service-secret-1';
export const PEOPLE = `ou=people,${SUFFIX}`;
export const GROUPS = `ou=groups,${SUFFIX}`;

const SBIN = ['/usr/sbin', '/sbin'];
function which(cmd) {
  for (const d of [...(process.env.PATH || '').split(':'), ...SBIN]) {
    const p = path.join(d, cmd);
    if (d && fs.existsSync(p)) return p;
  }
  return null;
}

/** Why the directory tests cannot run here, or null (CI installs these: scripts/deps.sh). */
export function missing() {
  for (const c of ['slapd', 'slapadd', 'ldapsearch', 'ldapmodify', 'openssl']) if (!which(c)) return `${c} is not installed (scripts/deps.sh test)`;
  if (!fs.existsSync('/usr/lib/ldap/back_mdb.so') && !fs.existsSync('/usr/lib/ldap/back_mdb-2.5.so.0')) return 'slapd has no mdb backend';
  return null;
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

/** The 3-level tree of departments below ou=people: [path of ou names, outermost first]. */
export const LEAVES = [
  ['Engineering', 'Platform', 'Storage'], ['Engineering', 'Platform', 'Network'],
  ['Engineering', 'Apps', 'Web'], ['Engineering', 'Apps', 'Mobile'],
  ['Sales', 'EMEA', 'North'], ['Sales', 'EMEA', 'South'],
  ['Sales', 'APAC', 'Japan'], ['Sales', 'APAC', 'China'],
];
export const PER_LEAF = 26; // 208 users

export const dnOf = (ous) => [...ous].reverse().map((o) => `ou=${o}`).join(',') + `,${PEOPLE}`;
export const uidOf = (i) => `u${String(i).padStart(3, '0')}`;
export const passwordOf = (uid) => `pw-${uid}-secret`;

/** The LDIF of the whole directory: users[i] = {uid, ous, dn}; perLeaf users in each leaf ou
 * (the default: 208 users; directory-scale.test.mjs makes 5 000). */
export function buildLdif(perLeaf = PER_LEAF) {
  const out = [];
  const users = [];
  const entry = (lines) => out.push(lines.join('\n') + '\n');
  entry([`dn: ${SUFFIX}`, 'objectClass: dcObject', 'objectClass: organization', 'o: Example', 'dc: example']);
  for (const ou of ['people', 'groups', 'services']) entry([`dn: ou=${ou},${SUFFIX}`, 'objectClass: organizationalUnit', `ou: ${ou}`]);
  entry([`dn: ${SERVICE_DN}`, 'objectClass: organizationalRole', 'objectClass: simpleSecurityObject', 'cn: coffer', `userPassword: ${SERVICE_PW}`]);
  const made = new Set();
  for (const leaf of LEAVES) {
    for (let d = 1; d <= leaf.length; d++) {
      const dn = dnOf(leaf.slice(0, d));
      if (made.has(dn)) continue;
      made.add(dn);
      entry([`dn: ${dn}`, 'objectClass: organizationalUnit', `ou: ${leaf[d - 1]}`]);
    }
  }
  let i = 1;
  for (const leaf of LEAVES) {
    for (let k = 0; k < perLeaf; k++, i++) {
      const uid = uidOf(i);
      const dn = `uid=${uid},${dnOf(leaf)}`;
      users.push({ uid, ous: leaf, dn });
      // u100's name holds a control character (the sync stores it as '?'): base64 in LDIF.
      const cn = uid === 'u100' ? `cn:: ${Buffer.from('Zoë\u0007Ng').toString('base64')}` : `cn: User ${uid.toUpperCase()}`;
      entry([`dn: ${dn}`, 'objectClass: inetOrgPerson', `uid: ${uid}`, cn, `sn: ${uid}`,
        `mail: ${uid}@example.org`, `userPassword: ${passwordOf(uid)}`]);
    }
  }
  // Groups: every 10th user of the first 100 in "storage-readers", the Sales users in "sales".
  const readers = users.slice(0, 100).filter((_, k) => k % 10 === 0);
  entry([`dn: cn=storage-readers,${GROUPS}`, 'objectClass: groupOfNames', 'cn: storage-readers', ...readers.map((u) => `member: ${u.dn}`)]);
  entry([`dn: cn=sales,${GROUPS}`, 'objectClass: groupOfNames', 'cn: sales', ...users.filter((u) => u.ous[0] === 'Sales').map((u) => `member: ${u.dn}`)]);
  entry([`dn: cn=nobody-yet,${GROUPS}`, 'objectClass: groupOfNames', 'cn: nobody-yet', `member: ${SERVICE_DN}`]);
  return { ldif: out.join('\n'), users, readers };
}

export class Slapd {
  static async start(opts = {}) {
    const s = new Slapd();
    s.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'slapd-'));
    s.port = await freePort();
    s.url = `ldaps://127.0.0.1:${s.port}`;
    // Also plain LDAP on another port, for StartTLS (and the allow_plaintext test set-up).
    s.plainPort = await freePort();
    s.plainUrl = `ldap://127.0.0.1:${s.plainPort}`;
    s.makeCerts();
    s.writeConf();
    const { ldif, users, readers } = buildLdif(opts.perLeaf);
    s.users = users;
    s.readers = readers;
    fs.writeFileSync(path.join(s.dir, 'data.ldif'), ldif);
    fs.mkdirSync(path.join(s.dir, 'db'));
    const r = spawnSync(which('slapadd'), ['-f', s.conf, '-l', path.join(s.dir, 'data.ldif')], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`slapadd failed (${r.status}): ${r.stderr}`);
    await s.run(opts.deadline || 120000);
    return s;
  }

  get conf() { return path.join(this.dir, 'slapd.conf'); }
  get caFile() { return path.join(this.dir, 'ca.pem'); }

  makeCerts() {
    const d = this.dir;
    const ossl = (args) => execFileSync('openssl', args, { cwd: d, stdio: ['ignore', 'ignore', 'pipe'] });
    ossl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=Coffer test LDAP CA',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
    ossl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=127.0.0.1']);
    fs.writeFileSync(path.join(d, 'ext.cnf'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n');
    ossl(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'ext.cnf']);
    fs.chmodSync(path.join(d, 'server.key'), 0o600);
  }

  writeConf() {
    const d = this.dir;
    const mod = fs.existsSync('/usr/lib/ldap') ? 'modulepath /usr/lib/ldap\nmoduleload back_mdb\n' : '';
    fs.writeFileSync(this.conf, `include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
${mod}pidfile ${d}/slapd.pid
argsfile ${d}/slapd.args
TLSCACertificateFile ${d}/ca.pem
TLSCertificateFile ${d}/server.pem
TLSCertificateKeyFile ${d}/server.key
sizelimit unlimited
database mdb
maxsize 104857600
suffix "${SUFFIX}"
rootdn "${ROOT_DN}"
rootpw ${ROOT_PW}
directory ${d}/db
index objectClass eq
index uid eq
index member eq
access to attrs=userPassword by self write by anonymous auth by * none
access to * by users read by * none
`);
  }

  async run(deadline) {
    this.stderr = '';
    // -d 256 (stats): the access log (connections, binds, searches) on stderr, for tests to read.
    this.proc = spawn(which('slapd'), ['-f', this.conf, '-h', `${this.url}/ ${this.plainUrl}/`, '-d', '256'], { stdio: ['ignore', 'ignore', 'pipe'] });
    this.proc.stderr.on('data', (c) => { this.stderr += c; });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
    this.pid = this.proc.pid;
    const until = Date.now() + deadline;
    for (;;) {
      if (this.proc.exitCode !== null) throw new Error(`slapd exited early (${this.proc.exitCode}):\n${this.stderr}`);
      if (this.search(SUFFIX, '(objectClass=*)', ['dn'], 'base').status === 0) return;
      if (Date.now() > until) throw new Error(`slapd did not answer on ${this.url}:\n${this.stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** The access log so far (slapd's stats lines: "conn=… op=… SRCH base=… filter=…", "BIND dn=…"). */
  get accessLog() { return this.stderr; }

  env() { return { ...process.env, LDAPTLS_CACERT: this.caFile, LDAPTLS_REQCERT: 'demand' }; }

  /** ldapsearch as the root DN: {status, stdout, stderr}. */
  search(base, filter, attrs = [], scope = 'sub') {
    return spawnSync(which('ldapsearch'), ['-LLL', '-o', 'ldif-wrap=no', '-H', this.url, '-x', '-D', ROOT_DN, '-w', ROOT_PW, '-s', scope, '-b', base, filter, ...attrs],
      { env: this.env(), encoding: 'utf8', timeout: 60000 });
  }

  /** ldapmodify as the root DN (LDIF with changetype lines); throws on failure. */
  modify(ldif) {
    const r = spawnSync(which('ldapmodify'), ['-H', this.url, '-x', '-D', ROOT_DN, '-w', ROOT_PW], { env: this.env(), input: ldif, encoding: 'utf8', timeout: 60000 });
    if (r.status !== 0) throw new Error(`ldapmodify failed (${r.status}): ${r.stderr}\n${ldif}`);
    return r;
  }

  /** Stops slapd by its PID (SIGKILL: an outage, not a shutdown). */
  async kill() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      process.kill(this.pid, 'SIGKILL');
      await this.exited;
    }
  }

  /** Starts it again on the same port and data. */
  async restart(deadline = 120000) {
    await this.kill();
    await this.run(deadline);
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) {
      process.kill(this.pid, 'SIGTERM');
      await this.exited;
    }
    fs.rmSync(this.dir, { recursive: true, force: true });
  }
}
