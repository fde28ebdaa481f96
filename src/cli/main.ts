/**
 * `kiln`: train, evaluate and inspect models from the shell. Each command accepts --json and then
 * prints one JSON object with its results as the last line of stdout.
 */
import { Command, InvalidArgumentError } from 'commander';

import { availableParallelism } from 'node:os';

import { DEFAULT_BATCHES_IN_FLIGHT, MAX_BATCHES_IN_FLIGHT } from '../runtime/micro-batcher.js';
import { setNumThreads } from '../system.js';
import { benchCommand } from './bench.js';
import { compressCommand } from './compress.js';
import { distillCommand } from './distill.js';
import { evalCommand } from './eval.js';
import { exportCommand } from './export.js';
import { infoCommand } from './info.js';
import { pruneCommand } from './prune.js';
import { quantizeCommand } from './quantize.js';
import { reportCommand } from './report.js';
import { SERVE_CLI_DEFAULTS, SERVE_DEFAULTS, serveCommand } from './serve.js';
import { capThreads } from './threads.js';
import { trainCommand } from './train.js';
import { MAX_VERIFY_INPUTS, verifyCommand } from './verify.js';


/** commander parser for an integer option within [min, max]. */
export function intOption(min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`expected an integer in [${min}, ${max}], received "${value}"`);
    }
    return n;
  };
}

/** commander parser for a finite number option within (min, max]. */
export function numberOption(min: number, max = Infinity) {
  return (value: string): number => {
    const n = Number(value);
    if (value.trim() === '' || !Number.isFinite(n) || n <= min || n > max) {
      throw new InvalidArgumentError(`expected a number in (${min}, ${max}], received "${value}"`);
    }
    return n;
  };
}

export function buildProgram(): Command {
  const program = new Command();
  program
    .name('kiln')
    .description('Train, compress and serve convolutional networks from Node.js')
    .option('--threads <n>', `kernel threads (default and most: the ${availableParallelism()} this machine offers)`, intOption(1, 1024))
    .hook('preAction', (cmd) => {
      const threads = cmd.opts().threads as number | undefined;
      if (threads !== undefined) setNumThreads(capThreads('--threads', threads));
    })
    .showHelpAfterError();

  program
    .command('train')
    .description('train the SeedCNN on a data set and save it as a .kiln file')
    .option('--dataset <name>', 'mnist | cifar10 | synthetic', 'mnist')
    .option('--data-dir <dir>', 'folder with CIFAR-10 binary files (data_batch_N.bin, test_batch.bin)')
    .option('--epochs <n>', 'epochs (default: the recipe\'s)', intOption(1, 10000))
    .option('--batch-size <n>', 'mini-batch size (default: the recipe\'s)', intOption(1, 65536))
    .option('--lr <x>', 'peak learning rate (default: the recipe\'s)', numberOption(0, 100))
    .option('--optimizer <type>', 'sgd | adam | adamw (default: the recipe\'s)')
    .option('--width-multiplier <x>', 'channel width multiplier of the SeedCNN', numberOption(0, 16), 1)
    .option('--seed <n>', 'seed for initialisation, shuffling and augmentation', intOption(0), 1)
    .option('--out <file>', 'where to write the trained model', 'seedcnn.kiln')
    .option('--json', 'print one JSON object with the results as the last line')
    .action(trainCommand);

  program
    .command('eval')
    .description('evaluate a .kiln model on the held-out split of a data set')
    .argument('<model>', 'model file (.kiln)')
    .option('--dataset <name>', 'mnist | cifar10 | synthetic', 'mnist')
    .option('--data-dir <dir>', 'folder with CIFAR-10 binary files')
    .option('--seed <n>', 'seed of the train/test split (default: the one the model was trained with, else 1)', intOption(0))
    .option('--batch-size <n>', 'inference batch size', intOption(1, 65536), 256)
    .option('--json', 'print one JSON object with the results as the last line')
    .action(evalCommand);

  program
    .command('info')
    .description('summarise a model: layers, parameters, MACs per image, file size; per Conv/Gemm weight: sparsity, pattern, dense and packed bytes, the kernel a session chooses')
    .argument('<model>', 'model file (.kiln or .onnx)')
    .option('--json', 'print one JSON object with the results as the last line')
    .action(infoCommand);

  program
    .command('export')
    .description('write a .kiln model as an ONNX file (opset 17, fp32)')
    .argument('<model>', 'model file (.kiln)')
    .requiredOption('--out <file>', 'ONNX file to write')
    .option('--json', 'print one JSON object with the results as the last line')
    .action(exportCommand);

  program
    .command('verify')
    .description('compare Kiln with onnxruntime-node on the same inputs (max abs/rel difference, top-1 agreement)')
    .argument('<model>', 'model file (.onnx or .kiln)')
    .option('--dataset <name>', 'use held-out images of this data set (mnist | cifar10 | synthetic) instead of random inputs')
    .option('--data-dir <dir>', 'folder with CIFAR-10 binary files')
    .option('--count <n>', `number of images (at most the held-out split's size) or random inputs (at most ${MAX_VERIFY_INPUTS})`, intOption(1, MAX_VERIFY_INPUTS), 512)
    .option('--per-node', 'also compare every intermediate value and name the first node that diverges')
    .option('--seed <n>', 'seed of the split (default: the one the model was trained with) / of random inputs (default 1)', intOption(0))
    .option('--json', 'print one JSON object with the results as the last line')
    .action(verifyCommand);

  program
    .command('quantize')
    .description('int8-quantize a model (static PTQ calibrated on a data set, --qat, or --dynamic) and write it as a .kiln file')
    .argument('<model>', 'model file (.kiln or .onnx), fp32')
    .option('--calibrate <dataset>', 'calibrate on the train split of this data set and evaluate on its held-out split: mnist | cifar10 | synthetic')
    .option('--data-dir <dir>', 'folder with CIFAR-10 binary files')
    .option('--seed <n>', 'seed of the train/test split (default: the one the model was trained with, else 1)', intOption(0))
    .option('--method <name>', 'calibration: minmax | percentile | entropy | mse', 'minmax')
    .option('--percentile <p>', 'percentage of values kept by --method percentile', numberOption(0, 100))
    .option('--batches <n>', 'calibration batches', intOption(1, 1 << 20), 16)
    .option('--batch-size <n>', 'images per calibration batch', intOption(1, 65536), 64)
    .option('--per-tensor', 'one weight scale per layer instead of one per output channel')
    .option('--activations <dtype>', 'uint8 (asymmetric) | int8 (symmetric)', 'uint8')
    .option('--strict', 'fail instead of leaving ops without an int8 form in fp32')
    .option('--dynamic', 'dynamic quantization (Linear/Gemm/MatMul models; no calibration)')
    .option('--eval-images <n>', 'held-out images for the fp32 vs int8 accuracy (default: all on the runtime, 500 on the reference interpreter)', intOption(1, 1 << 20))
    .option('--qat', 'quantization-aware training instead of PTQ: fine-tune the .kiln model with fake-quantized int8 on the --calibrate train split, then convert')
    .option('--epochs <n>', 'QAT fine-tuning epochs (with --qat; default 2)', intOption(1, 10000))
    .requiredOption('--out <file>', '.kiln file to write')
    .option('--json', 'print one JSON object with the results as the last line')
    .action(quantizeCommand);

  program
    .command('prune')
    .description('prune a .kiln model (masked weights) on a schedule while fine-tuning on a data set, and write it as a .kiln file; --shrink: remove pruned filters for a smaller dense model')
    .argument('<model>', 'model file (.kiln) holding a trained Module (with --shrink --no-finetune: also .onnx or a saved graph)')
    .option('--sparsity <x>', 'share of zero weights in each pruned layer, in [0, 1) (implied by an N:M --pattern)')
    .option('--schedule <name>', 'agp | oneshot | iterative', 'agp')
    .option('--rounds <n>', 'prune + fine-tune rounds of --schedule iterative (default 3)', intOption(1, 1000))
    .option('--epochs <n>', 'fine-tuning epochs (0 with --schedule oneshot: mask only)', intOption(0, 10000), 2)
    .option('--method <name>', 'magnitude | global | random | l1 | l2 | bn', 'magnitude')
    .option('--pattern <name>', 'unstructured | 2:4 | 1:4 | 4:8 | block1x4 | block4x1 | block8x1 | filter (default unstructured; filter for l1, l2, bn)')
    .option('--layers <list>', 'comma-separated layer names to prune (default: all but the first conv and the last Linear; see kiln info)')
    .option('--dataset <name>', 'fine-tune on the train split and evaluate on the held-out split of: mnist | cifar10 | synthetic', 'mnist')
    .option('--data-dir <dir>', 'folder with CIFAR-10 binary files')
    .option('--seed <n>', 'seed of the train/test split and the fine-tune (default: the one the model was trained with, else 1)', intOption(0))
    .option('--analyze', 'sensitivity analysis instead: held-out accuracy per layer at sparsities 0.1 ... 0.95 (one layer pruned at a time, no fine-tune) and a suggested per-layer sparsity')
    .option('--max-drop <x>', 'accuracy drop accepted by the --analyze suggestion, a fraction (default 0.005 = half a point)', numberOption(-Number.MIN_VALUE, 1))
    .option('--sparsity-from <file>', 'per-layer sparsities: the JSON --analyze printed or wrote (its "suggestion")')
    .option('--shrink', 'with --pattern filter (implied): remove the pruned filters and every channel coupled to them, writing an ordinary smaller dense model')
    .option('--round-to <n>', 'with --shrink: round the kept channel counts up to a multiple of n (e.g. 16, so shrunk layers stay on full-width kernels)')
    .option('--no-finetune', 'with --shrink: no data set, no fine-tuning: remove the lowest-L1 --sparsity of each coupled group\'s filters (any .kiln or ONNX model)')
    .option('--out <file>', '.kiln file to write (with --shrink: .onnx writes ONNX; with --analyze: optional JSON file for the analysis)')
    .option('--json', 'print one JSON object with the results as the last line')
    .action(pruneCommand);

  program
    .command('distill')
    .description('distil a teacher model (.kiln or .onnx, fp32 or int8) into a narrower SeedCNN on a data set (Hinton\'s loss), and write the student as a .kiln file')
    .requiredOption('--teacher <file>', 'teacher model (.kiln or .onnx)')
    .option('--student-width <x>', 'width multiplier of the SeedCNN student', numberOption(0, 16), 0.5)
    .option('--epochs <n>', 'training epochs', intOption(1, 10000), 8)
    .option('--temperature <t>', 'softmax temperature T > 0', numberOption(0, 1000), 4)
    .option('--alpha <x>', 'weight of the teacher term, in [0, 1] (the rest is cross-entropy on the labels)', numberOption(-Number.MIN_VALUE, 1), 0.9)
    .option('--hint-teacher <value>', 'feature (hint) distillation: value of the teacher\'s graph to match, e.g. relu_1_out (a .kiln SeedCNN: conv_out, relu_out, maxpool_out, conv_1_out, relu_1_out, maxpool_1_out)')
    .option('--hint-student <layer>', 'with --hint-teacher: index of the student layer whose output is matched through a learned 1x1 conv (SeedCNN: 0 conv, 1 relu, 2 pool, 3 conv, 4 relu, 5 pool)')
    .option('--hint-weight <w>', 'with --hint-teacher: weight >= 0 of the hint\'s mean squared error (default 1)', numberOption(-Number.MIN_VALUE))
    .option('--dataset <name>', 'train on the train split and evaluate on the held-out split of: mnist | cifar10 | synthetic', 'mnist')
    .option('--data-dir <dir>', 'folder with CIFAR-10 binary files')
    .option('--seed <n>', 'seed of the split (default: the teacher\'s, else 1), the student\'s init and batches', intOption(0))
    .requiredOption('--out <file>', '.kiln file to write')
    .option('--json', 'print one JSON object with the results as the last line')
    .action(distillCommand);

  program
    .command('compress')
    .description('run a compression recipe (distill, prune, fine-tune, quantize, pack under an accuracy budget) on a trained .kiln model; writes the model, its run record and optionally an HTML report')
    .argument('<model>', 'trained float .kiln model')
    .requiredOption('--recipe <file>', 'recipe .json (see recipes/)')
    .requiredOption('--out <file>', '.kiln file to write')
    .option('--record <file>', 'run record to write (default: <out without .kiln>.run.json)')
    .option('--report <file>', 'also write the HTML report (as kiln report does)')
    .option('--dataset <name>', 'train on the train split and measure on the held-out split of: mnist | cifar10 | synthetic', 'mnist')
    .option('--data-dir <dir>', 'folder with CIFAR-10 binary files')
    .option('--json', 'print one JSON object with the results as the last line')
    .action(compressCommand);

  program
    .command('bench')
    .description('time Kiln on one model: latency and images/s per batch size and thread count (--vs-ort: against onnxruntime-node, same inputs, alternating runs)')
    .argument('<model>', 'model file (.onnx or .kiln)')
    .option('--vs-ort', 'also time onnxruntime-node and report the speed-up')
    .option('--profile', 'time every plan step and print the slowest per cell: kernel, ms, GFLOP/s, fraction of the measured peak')
    .option('--top <n>', 'steps listed per cell with --profile', intOption(1, 10000), 10)
    .option('--batches <list>', 'comma-separated batch sizes', listOption(1, 1 << 20), [1, 8, 64])
    .option('--thread-counts <list>', 'comma-separated thread counts (intraOpNumThreads of both runtimes)', listOption(1, 1024), [1, 2])
    .option('--min-ms <n>', 'minimum timed milliseconds per cell', intOption(1, 600000), 1500)
    .option('--json', 'print one JSON object with the results as the last line')
    .action(benchCommand);

  program
    .command('report')
    .description('draw a compress run record (run.json) as one self-contained HTML page: result, accuracy, size and latency per stage (Kiln vs ONNX Runtime), training curves, sensitivity, layers, confusion matrix')
    .argument('<run>', 'run record (run.json) written by kiln compress')
    .requiredOption('--out <file>', 'HTML file to write')
    .option('--json', 'print one JSON object with the results as the last line')
    .action(reportCommand);

  program
    .command('serve')
    .description('serve a model over HTTP (KServe v2 / Open Inference Protocol: JSON and binary tensors, health, Prometheus /metrics), micro-batching concurrent requests; SIGTERM drains (see docs/serving.md)')
    .argument('<model>', 'model file (.kiln fp32 or int8, or .onnx)')
    .option('--port <n>', 'TCP port (0: any free port, printed at startup)', intOption(0, 65535), SERVE_CLI_DEFAULTS.port)
    .option('--host <address>', 'address to listen on (0.0.0.0 for every interface, e.g. in a container)', SERVE_CLI_DEFAULTS.host)
    .option('--model-name <name>', 'name in the URLs, /v2/models/<name>/infer (default: the file name without extension)')
    .option('--max-batch <n>', `most images merged into one run (default ${SERVE_CLI_DEFAULTS.maxBatch})`, intOption(1, 65536))
    .option('--max-delay-ms <ms>', `longest a request waits for others to batch with (default ${SERVE_CLI_DEFAULTS.maxDelayMs}: requests that arrive together are merged, none waits on purpose)`, numberOption(-Number.MIN_VALUE, 60000))
    .option('--batches-in-flight <n>', `merged runs in flight at once (default ${DEFAULT_BATCHES_IN_FLIGHT}: the most requests/s; 1: the shortest tail for models whose run takes tens of ms or more)`, intOption(1, MAX_BATCHES_IN_FLIGHT))
    .option('--run-when-idle', 'a request that finds no batch in flight runs at once instead of waiting --max-delay-ms (the delay then only applies under load)')
    .option('--no-batching', 'run each request on its own')
    .option('--spin', 'after each run the kernel threads poll for the next for ~1 ms instead of sleeping (saves a 5-20 us wake-up per run, takes CPU the event loop could use)')
    .option('--no-spin', 'kernel threads sleep as soon as a run ends (the default)')
    .option('--max-body-bytes <n>', 'largest request body; larger ones get 413', intOption(1, 2 ** 31), SERVE_DEFAULTS.maxBodyBytes)
    .option('--request-timeout-ms <ms>', 'time a client has to send a whole request; then 408 and close', intOption(1, 3_600_000), SERVE_DEFAULTS.requestTimeoutMs)
    .option('--max-connections <n>', 'most open connections (bounds requests in flight); more are closed at once', intOption(1, 1 << 20), SERVE_DEFAULTS.maxConnections)
    .option('--shutdown-timeout-ms <ms>', 'on SIGTERM, longest wait for requests in flight before closing their connections', intOption(0, 3_600_000), SERVE_CLI_DEFAULTS.shutdownTimeoutMs)
    .option('--runtime <name>', 'kiln | onnxruntime (onnxruntime-node behind the same server, for comparison; no batching)', 'kiln')
    .option('--json', 'status lines on stderr; once ready, one JSON object on stdout (url, port, model, inputs, batching)')
    .action((model: string, opts, cmd: Command) => {
      const threads = cmd.parent?.opts().threads as number | undefined;
      return serveCommand(model, opts, threads === undefined ? undefined : Math.min(threads, availableParallelism()));
    });

  return program;
}

/** commander parser for a comma-separated list of integers within [min, max]. */
export function listOption(min: number, max: number) {
  const one = intOption(min, max);
  return (value: string): number[] => value.split(',').map((v) => one(v.trim()));
}

/** Runs the CLI. Errors become a one-line message (or a JSON {error} line with --json) and exit code 1. */
export async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const e = err as { code?: string; message?: string; exitCode?: number };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) {
      // commander already printed its message (help, version, bad option).
      process.exitCode = e.exitCode ?? 1;
      return;
    }
    const wantsJson = argv.includes('--json');
    if (wantsJson) {
      process.stdout.write(`${JSON.stringify({ error: { code: e.code ?? 'ERR_KILN', message: e.message ?? String(err) } })}\n`);
    } else {
      process.stderr.write(`kiln: ${e.message ?? String(err)}${e.code ? ` (${e.code})` : ''}\n`);
    }
    process.exitCode = 1;
  }
}
