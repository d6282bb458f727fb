/**
 * Real update artifacts and updater systems for the install handler tests, made with Debian's tools:
 * `.deb` packages (dpkg-deb) and a throwaway dpkg root, signed `.swu` images (openssl, cpio), and a RAUC
 * system on file-backed slots with a custom bootloader backend, its own D-Bus daemon and `rauc service`.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tar from 'tar';
import { eventually } from './eventually.js';

export function missingTools(tools: string[]): string[] {
  return tools.filter((tool) => spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0);
}

function sh(script: string, cwd: string): string {
  const r = spawnSync('sh', ['-ec', script], { cwd, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${script.trim().split('\n')[0]} … failed: ${r.stderr}${r.stdout}`);
  return r.stdout;
}

/** A package `fleetd-demo` that installs /opt/demo/version; `depends` can name one the root lacks. */
export function buildDeb(work: string, version: string, depends?: string): string {
  const dir = join(work, `deb-${version}`);
  mkdirSync(join(dir, 'DEBIAN'), { recursive: true });
  mkdirSync(join(dir, 'opt', 'demo'), { recursive: true });
  writeFileSync(
    join(dir, 'DEBIAN', 'control'),
    `Package: fleetd-demo\nVersion: ${version}\nArchitecture: all\nMaintainer: FleetD <dev@example.com>\n${
      depends ? `Depends: ${depends}\n` : ''
    }Description: FleetD test package\n`,
  );
  writeFileSync(join(dir, 'opt', 'demo', 'version'), `${version}\n`);
  const deb = join(work, `fleetd-demo_${version}.deb`);
  sh(`dpkg-deb --root-owner-group --build "${dir}" "${deb}" >/dev/null`, work);
  return deb;
}

/** An empty root with the package database dpkg expects. */
export function dpkgRoot(work: string): string {
  const root = join(work, 'dpkg-root');
  mkdirSync(join(root, 'var', 'lib', 'dpkg', 'updates'), { recursive: true });
  mkdirSync(join(root, 'var', 'lib', 'dpkg', 'info'), { recursive: true });
  writeFileSync(join(root, 'var', 'lib', 'dpkg', 'status'), '');
  return root;
}

/** The version of fleetd-demo dpkg has installed in the root (undefined: not installed). */
export function installedDemo(root: string): string | undefined {
  const r = spawnSync(
    'dpkg-query',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format placeholders
    [`--root=${root}`, '-W', '-f', '${Version} ${db:Status-Abbrev}', 'fleetd-demo'],
    {
      encoding: 'utf8',
    },
  );
  if (r.status !== 0) return undefined;
  const [version, status] = r.stdout.trim().split(/\s+/);
  return status === 'ii' ? version : `${version} (${status})`;
}

/** A signing key and certificate for .swu images, and a wrapper that runs swupdate with its own TMPDIR. */
export function swupdateSetup(work: string): { cert: string; key: string; command: string } {
  const dir = join(work, 'swu-keys');
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  sh(
    'openssl req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -subj /CN=fleetd-swu -days 30 2>/dev/null',
    dir,
  );
  const command = join(dir, 'swupdate');
  // its IPC sockets live in TMPDIR: one per test run, so parallel runs never meet
  writeFileSync(command, `#!/bin/sh\nTMPDIR="${join(dir, 'tmp')}/" exec swupdate "$@"\n`);
  chmodSync(command, 0o755);
  return { cert: join(dir, 'cert.pem'), key: join(dir, 'key.pem'), command };
}

/** A signed .swu whose rawfile handler writes `content` to `path`. */
export function buildSwu(
  work: string,
  name: string,
  key: { cert: string; key: string },
  path: string,
  content: string,
) {
  const dir = join(work, `swu-${name}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'payload.txt'), content);
  sh(
    `SHA=$(sha256sum payload.txt | cut -d' ' -f1)
cat > sw-description <<EOF
software =
{
	version = "1.0.0";
	hardware-compatibility: [ "1.0" ];
	files: ( { filename = "payload.txt"; path = "${path}"; sha256 = "$SHA"; properties = { create-destination = "true"; }; } );
};
EOF
openssl cms -sign -in sw-description -out sw-description.sig -signer "${key.cert}" -inkey "${key.key}" -outform DER -nosmimecap -binary
printf 'sw-description\\nsw-description.sig\\npayload.txt\\n' | cpio -o -H newc --quiet > ../${name}.swu`,
    dir,
  );
  return join(work, `${name}.swu`);
}

export interface RaucSystem {
  /** The RAUC client command (a wrapper talking to this system's own bus). */
  command: string;
  slotA: string;
  slotB: string;
  /** What the custom bootloader backend holds: the primary slot and each slot's state. */
  primary(): string;
  /** A bundle signed by the system's CA (or by `ca` when given) whose rootfs image is `image`. */
  bundle(name: string, image: Buffer, ca?: { cert: string; key: string }): string;
  newCa(name: string): { cert: string; key: string };
  stop(): Promise<void>;
}

/**
 * RAUC on two 1 MiB files as slots A and B, booted from A (`--override-boot-slot`), with a bootloader
 * backend script keeping its state in files. Bundles are `plain` (squashfs): `verity` needs device-mapper,
 * which a container without /dev/mapper/control does not have.
 */
export async function startRauc(work: string): Promise<RaucSystem> {
  const dir = join(work, 'rauc');
  mkdirSync(join(dir, 'boot'), { recursive: true });
  const newCa = (name: string) => {
    sh(
      `openssl req -x509 -newkey rsa:2048 -nodes -keyout ${name}.key -out ${name}.pem -subj /CN=${name} -days 30 2>/dev/null`,
      dir,
    );
    return { cert: join(dir, `${name}.pem`), key: join(dir, `${name}.key`) };
  };
  const ca = newCa('fleetd-test-ca');
  const slotA = join(dir, 'slot-a.img');
  const slotB = join(dir, 'slot-b.img');
  sh(`truncate -s 1M "${slotA}" "${slotB}"`, dir);
  const backend = join(dir, 'bootloader.sh');
  writeFileSync(
    backend,
    `#!/bin/sh
S="${join(dir, 'boot')}"
case "$1" in
  get-primary) cat "$S/primary" 2>/dev/null || echo A ;;
  set-primary) echo "$2" > "$S/primary" ;;
  get-state) cat "$S/state.$2" 2>/dev/null || echo good ;;
  set-state) echo "$3" > "$S/state.$2" ;;
  get-current) cat "$S/primary" 2>/dev/null || echo A ;;
  *) exit 1 ;;
esac
`,
  );
  chmodSync(backend, 0o755);
  writeFileSync(
    join(dir, 'system.conf'),
    `[system]
compatible=fleetd-test
bootloader=custom
data-directory=${join(dir, 'data')}
[handlers]
bootloader-custom-backend=${backend}
[keyring]
path=${ca.cert}
[slot.rootfs.0]
device=${slotA}
type=raw
bootname=A
[slot.rootfs.1]
device=${slotB}
type=raw
bootname=B
`,
  );
  const bus = join(dir, 'bus');
  writeFileSync(
    join(dir, 'dbus.conf'),
    `<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN" "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig><type>system</type><listen>unix:path=${bus}</listen><auth>EXTERNAL</auth>
<policy context="default"><allow user="*"/><allow own="*"/><allow send_destination="*"/><allow receive_sender="*"/></policy></busconfig>
`,
  );
  const env = { ...process.env, DBUS_SYSTEM_BUS_ADDRESS: `unix:path=${bus}` };
  const children: ChildProcess[] = [];
  const output: string[] = [];
  const track = (child: ChildProcess) => {
    children.push(child);
    child.stdout?.on('data', (c: Buffer) => output.push(c.toString()));
    child.stderr?.on('data', (c: Buffer) => output.push(c.toString()));
  };
  track(spawn('dbus-daemon', ['--nofork', `--config-file=${join(dir, 'dbus.conf')}`], { env }));
  await eventually('the test D-Bus daemon to listen', () => existsSync(bus));
  track(spawn('rauc', ['service', `--conf=${join(dir, 'system.conf')}`, '--override-boot-slot=A'], { env }));
  const command = join(dir, 'rauc-client');
  writeFileSync(command, `#!/bin/sh\nDBUS_SYSTEM_BUS_ADDRESS="unix:path=${bus}" exec rauc "$@"\n`);
  chmodSync(command, 0o755);
  await eventually(
    'rauc service to answer',
    () => spawnSync(command, ['status'], { encoding: 'utf8' }).status === 0,
    { timeoutMs: 15_000 },
  ).catch((e: unknown) => {
    throw new Error(`${String(e)}\n${output.join('')}`);
  });
  return {
    command,
    slotA,
    slotB,
    newCa,
    primary: () =>
      existsSync(join(dir, 'boot', 'primary'))
        ? readFileSync(join(dir, 'boot', 'primary'), 'utf8').trim()
        : 'A',
    bundle(name, image, signer = ca) {
      const content = join(dir, `content-${name}`);
      mkdirSync(content, { recursive: true });
      writeFileSync(join(content, 'rootfs.img'), image);
      writeFileSync(
        join(content, 'manifest.raucm'),
        `[update]\ncompatible=fleetd-test\nversion=${name}\n[bundle]\nformat=plain\n[image.rootfs]\nfilename=rootfs.img\n`,
      );
      const out = join(dir, `${name}.raucb`);
      sh(
        `rauc bundle --cert="${signer.cert}" --key="${signer.key}" "${content}" "${out}" >/dev/null 2>&1`,
        dir,
      );
      return out;
    },
    async stop() {
      for (const child of children.reverse()) {
        if (child.exitCode !== null || child.signalCode !== null) continue;
        await new Promise<void>((done) => {
          child.once('exit', () => done());
          child.kill('SIGTERM');
        });
      }
    },
  };
}

/** A bundle release's artifact: `bundle.json` and the component files, as a .tar.gz. */
export async function buildBundle(
  work: string,
  name: string,
  description: object,
  files: Record<string, string | Buffer>,
): Promise<string> {
  const dir = join(work, `bundle-${name}`);
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'bundle.json'), JSON.stringify(description));
  for (const [file, content] of Object.entries(files)) writeFileSync(join(dir, file), content);
  const out = join(work, `${name}.tar.gz`);
  await tar.c({ gzip: true, file: out, cwd: dir, portable: true }, ['bundle.json', ...Object.keys(files)]);
  return out;
}
