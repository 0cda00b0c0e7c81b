/** Whether something accepts a TCP connection on 127.0.0.1:`port` (the connection is closed at once). */
import { connect } from 'node:net';

export function listening(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    s.once('connect', () => (s.destroy(), resolve(true)));
    s.once('error', () => resolve(false));
  });
}
