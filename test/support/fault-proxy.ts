// A TCP pass-through in front of a real dependency (an emulator, the
// kube-apiserver) that the fail-closed tests switch off and on: the dependency
// itself stays real; only the path to it goes away, like a network outage.
import { createServer, connect, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export class FaultProxy {
  private readonly target: { host: string; port: number };
  private readonly sockets = new Set<Socket>();
  private server: Server | undefined;
  private available = true;
  port = 0;

  constructor(targetUrl: string) {
    const url = new URL(targetUrl);
    this.target = { host: url.hostname, port: Number(url.port) };
  }

  async listen(): Promise<number> {
    this.server = createServer((client) => {
      if (!this.available) {
        client.destroy();
        return;
      }
      const upstream = connect(this.target.port, this.target.host);
      for (const socket of [client, upstream]) {
        this.sockets.add(socket);
        socket.on('close', () => this.sockets.delete(socket));
        socket.on('error', () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as AddressInfo).port;
    return this.port;
  }

  /** Cut every open connection and refuse new ones. */
  down(): void {
    this.available = false;
    for (const socket of this.sockets) socket.destroy();
  }

  up(): void {
    this.available = true;
  }

  url(protocol: 'http' | 'https'): string {
    return `${protocol}://127.0.0.1:${this.port}`;
  }

  async close(): Promise<void> {
    this.down();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
