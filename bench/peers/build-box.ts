/** Build (if needed) the peers bench's Vagrant box and print its .box path: node dist/bench/peers/build-box.js */
import { ensureBox } from './box.js';

process.stdout.write((await ensureBox()).box + '\n');
