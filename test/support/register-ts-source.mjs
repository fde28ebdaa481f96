// `node --import` entry that installs ts-source-hooks.mjs (see there).
import { register } from 'node:module';

register('./ts-source-hooks.mjs', import.meta.url);
