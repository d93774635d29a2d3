/**
 * The dashboard's "Try it" pages: a run's best model as the browser predictor of
 * `unet export --format web`, exported on first request into a temporary folder (again when
 * best_model.pth changes) and served from /try/<run>/.
 *
 * The run's best model is `<checkpointDir>/best_model.pth` of its config.json (relative to the
 * dashboard's working folder, as training resolved it), and only when that checkpoint records
 * this run as its run_dir: a later run writing to the same folder replaces it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { readFile, realpath, stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { modelCard, runnableMetadata } from '../model/card.js';
import { loadCheckpoint } from '../model/checkpoint.js';
import { chooseScale } from '../model/scale.js';
import { sendSiteFile } from './serve.js';
import { writeWebSite } from './web.js';

/** Serves /try/<run>/<file> for the dashboard; `close()` removes the exported folders. */
export function tryItPages(): { serve: (runDir: string, file: string, res: ServerResponse) => Promise<void>; close: () => void } {
  const root = mkdtempSync(join(tmpdir(), 'unet-try-'));
  const sites = new Map<string, { key: string; dir: Promise<string> }>();
  let n = 0;

  async function bestModel(runDir: string): Promise<string> {
    let cfg: Record<string, unknown>;
    try {
      cfg = JSON.parse(await readFile(join(runDir, 'config.json'), 'utf8'));
    } catch {
      throw new Error(`${basename(runDir)} has no readable config.json, so its checkpoints cannot be found`);
    }
    const ckptDir = typeof cfg.checkpointDir === 'string' ? cfg.checkpointDir : 'checkpoints';
    const best = resolve(ckptDir, 'best_model.pth');
    if (!(await stat(best).catch(() => null))) throw new Error(`no ${best} yet: a run has a best model after its first validation`);
    return best;
  }

  async function exportSite(runDir: string, best: string): Promise<string> {
    const ckpt = await loadCheckpoint(best);
    const owner = ckpt.runDir ? await realpath(resolve(ckpt.runDir)).catch(() => resolve(ckpt.runDir as string)) : null;
    if (owner !== runDir) throw new Error(`${best} belongs to ${owner ? `another run (${basename(owner)})` : 'no recorded run'}; export this run's checkpoint with \`unet export --format web\``);
    const card = modelCard(ckpt);
    const dir = join(root, String(n++));
    const meta = runnableMetadata(card, chooseScale(card.trainingScale, undefined).scale);
    await writeWebSite(dir, [{ weights: ckpt.model, args: card.args }], meta, `${basename(runDir)}: best_model.pth (epoch ${ckpt.epoch}${ckpt.valScore !== null ? `, validation Dice ${ckpt.valScore.toFixed(3)}` : ''})`);
    return dir;
  }

  return {
    async serve(runDir, file, res) {
      let dir: string;
      try {
        const best = await bestModel(runDir);
        const st = await stat(best);
        const key = `${best}:${st.mtimeMs}:${st.size}`;
        let site = sites.get(runDir);
        if (!site || site.key !== key) {
          site = { key, dir: exportSite(runDir, best) };
          sites.set(runDir, site);
        }
        dir = await site.dir.catch((e) => {
          sites.delete(runDir);
          throw e;
        });
      } catch (e) {
        res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end(`No model to try: ${(e as Error).message}\n`);
        return;
      }
      await sendSiteFile(dir, file, res);
    },
    close: () => rmSync(root, { recursive: true, force: true }),
  };
}
