// One model run for the portability test (run.mjs), as a user runs Kiln: imports the package
// given as argv[2] (the published name, or the in-tree dist/src/index.js as a file URL), runs the
// fp32 and int8 SeedCNN models of argv[3] on the first 8 held-out MNIST digits with one kernel
// thread, and prints one JSON line: the ISA Kiln chose, the glibc it ran on and both models' logits.
//   node run-model.mjs <package> <models dir> [--make]
// --make first trains the models (1 epoch, seeded) and calibrates the int8 one, and saves both.
import { join } from 'node:path';

const [spec, dir, make] = process.argv.slice(2);
const kiln = await import(spec);
const { datasets, models, train, quantize, save, InferenceSession, Tensor, cpuInfo, setNumThreads } = kiln;
setNumThreads(1);
const { train: trainSet, test } = datasets.mnist();
const FP32 = join(dir, 'seedcnn.kiln');
const INT8 = join(dir, 'seedcnn-int8.kiln');

if (make === '--make') {
  const net = models.seedCNN({ inChannels: 1, height: 28, width: 28, numClasses: 10, seed: 1 });
  await train(net, trainSet, { epochs: 1, batchSize: 64, optimizer: { type: 'sgd', lr: 0.05, momentum: 0.9 }, seed: 1 });
  await save(net, FP32);
  const { graph } = await quantize(net, trainSet, { batches: 4, batchSize: 64 });
  await save(graph, INT8);
}

const count = 8;
const pixels = test.images.slice(0, count * 784);
const glibc = process.report.getReport().header.glibcVersionRuntime ?? null;
const out = { isa: cpuInfo().isa, bestIsa: cpuInfo().bestIsa, glibc, labels: Array.from(test.labels.slice(0, count)), logits: {} };
for (const [name, file] of [['fp32', FP32], ['int8', INT8]]) {
  const session = await InferenceSession.create(file);
  const result = await session.run({ [session.inputNames[0]]: new Tensor('float32', pixels.slice(), [count, 1, 28, 28]) });
  out.logits[name] = Array.from(result[session.outputNames[0]].data);
  session.release();
}
console.log(JSON.stringify(out));
