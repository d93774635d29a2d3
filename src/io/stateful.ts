/**
 * The one contract of everything a checkpoint restores beside the weights: optimizers, LR
 * schedulers, GradScaler, EarlyStopping and the random generators. `stateDict()` returns plain
 * values (numbers, strings, arrays, records, Maps, tensors) that the .pth writer stores under
 * PyTorch's keys; `loadStateDict()` takes that shape back as the .pth reader returns it (a
 * `Loadable` may be looser than what was saved, e.g. PyTorch's own files), validates it and throws
 * on a bad one. test/train.state-contract.test.ts round-trips every implementation through a file.
 */
export interface Stateful<Saved, Loadable = Saved> {
  stateDict(): Saved;
  loadStateDict(sd: Loadable): void;
}
