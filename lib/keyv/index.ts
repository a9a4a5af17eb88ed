export { RingKeyvStore } from './ring-keyv-store.js';
