/** The error of unreadable or inconsistent checkpoints, and reading numbers from their Python values. */
import { UserError } from '../config/errors.js';
import { PyFloat, type PyValue } from '../io/pth.js';

export class CheckpointError extends UserError {}

export const num = (v: PyValue | undefined): number | null => (typeof v === 'number' ? v : v instanceof PyFloat ? v.value : typeof v === 'bigint' ? Number(v) : null);
