import net from 'node:net';

/** A TCP port on loopback that nothing listens on right now, other than `avoid` (one about to be taken). */
export async function freePort(avoid?: number): Promise<number> {
  for (;;) {
    const port = await probePort();
    if (port !== avoid) return port;
  }
}

function probePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}
