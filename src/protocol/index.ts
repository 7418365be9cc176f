/** Packet codec, Channel (priorities, acks, heartbeats, backpressure), clocks, PCM-frame helpers. */
export * from './packet.ts';
export * from './channel.ts';
export * from './clock.ts';
export * from './audio_frames.ts';
