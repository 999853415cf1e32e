/**
 * Debian's OpenSSH server in a lab's receiving namespace (host 2), key-only, for the baselines
 * (scp, rsync -a over ssh, `ssh host true`) of bench/transfer's run.ts and overhead.ts. Returns
 * the client's ssh options (key, no host-key checks, batch mode).
 */
import { mkdir, writeFile, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Lab } from '../../test/harness/netns.js';
import { run } from '../../test/harness/proc.js';

export const SSH_PORT = 2222;

export async function startSshd(lab: Lab, work: string): Promise<string[]> {
  const ssh = join(work, 'ssh');
  await mkdir(ssh, { recursive: true, mode: 0o700 });
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(ssh, 'host_key')]);
  await run('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(ssh, 'client_key')]);
  await run('cp', [join(ssh, 'client_key.pub'), join(ssh, 'authorized_keys')]);
  await chmod(join(ssh, 'authorized_keys'), 0o600);
  // Debian's sshd refuses to start without its privilege separation directory.
  if (!existsSync('/run/sshd')) await mkdir('/run/sshd', { mode: 0o755 });
  const config = join(ssh, 'sshd_config');
  await writeFile(
    config,
    [
      `Port ${SSH_PORT}`,
      `ListenAddress ${lab.host(2).ipv4!}`,
      `HostKey ${join(ssh, 'host_key')}`,
      `AuthorizedKeysFile ${join(ssh, 'authorized_keys')}`,
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      'StrictModes no',
      'UsePAM no',
      // scp speaks SFTP by default (OpenSSH 9).
      'Subsystem sftp internal-sftp',
      `PidFile ${join(ssh, 'sshd.pid')}`,
      '',
    ].join('\n'),
  );
  lab.spawn(2, '/usr/sbin/sshd', ['-D', '-e', '-f', config]);
  const opts = ['-i', join(ssh, 'client_key'), '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR'];
  for (let i = 0; i < 50; i++) {
    const r = await lab.exec(1, 'ssh', [...opts, '-p', String(SSH_PORT), `root@${lab.host(2).ipv4!}`, 'true'], { check: false, timeoutMs: 10_000 });
    if (r.code === 0) return opts;
    await new Promise((res) => setTimeout(res, 200));
  }
  throw new Error('sshd in the receiving namespace did not accept the key');
}
