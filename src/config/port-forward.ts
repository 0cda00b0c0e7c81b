/** A forwarded port: host address:port to the guest's port (the spec's `ports`, instance.json, the drivers). */
export interface PortForward {
  proto: 'tcp' | 'udp';
  /** Host address the forward binds to (127.0.0.1 unless the user asked otherwise). */
  hostAddr: string;
  hostPort: number;
  guestPort: number;
}
