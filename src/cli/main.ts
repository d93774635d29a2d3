/** Entry point of the `unet` command (bin/unet.js imports the built copy of this file). */
import { buildProgram } from './program.js';

await buildProgram().parseAsync(process.argv);
