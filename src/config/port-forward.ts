/** A forwarded port: host address:port to the guest's port (the spec's `ports`, instance.json, the drivers). */
export interface PortForward {
  proto: 'tcp' | 'udp';
  /** Host address the forward binds to (127.0.0.1 unless the user asked otherwise). */
  hostAddr: string;
  /**
   * The host port. For a dynamic forward (`dynamic: true`), 0 until the instance's first start,
   * then the port picked at its last start (kept for the next start when it is still free).
   */
  hostPort: number;
  guestPort: number;
  /** The host port is picked by kumo at start (asked as `0:GUEST` or `{ guest: GUEST }`). */
  dynamic?: boolean;
}

