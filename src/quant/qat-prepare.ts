/**
 * `prepareQat`: turns a trained fp32 chain of layers into a QatModel whose forward simulates the
 * int8 graph that convertToInt8 will build from it.
 *
 * Where the simulation quantizes (as the int8 graph does):
 * - the graph input (QuantizeLinear; uint8 asymmetric, or int8 symmetric with `activations: 'int8'`);
 * - the output of every Conv2d/Linear, after the ReLU that directly follows it (the int8 graph
 *   fuses the ReLU and requantizes once), except the last Conv2d/Linear, whose output the int8
 *   graph dequantizes in the epilogue (float32 logits);
 * - every weight, int8 symmetric per output channel (or per tensor with `perChannel: false`),
 *   recomputed from the float weights at each step.
 * MaxPool2d and Flatten are not quantized again: on uint8 codes they only select or move values.
 * As max commutes with the monotonic fake-quant, a Conv2d+ReLU's fake-quant runs after the max-pools
 * that follow it (the same values on a quarter of the elements; only which of several equal
 * quantized maxima receives the gradient can differ). Biases stay
 * float (int32 with scale x_scale·w_scale in the int8 graph: an error below 1e-4 of a step).
 *
 * BatchNorm2d directly after a Conv2d is folded into it first, with its running statistics, as the
 * int8 graph folds it (w' = w·γ/√(σ²+ε), b' = (b - μ)·γ/√(σ²+ε) + β): fine-tuning then trains the
 * folded weights, the very ones that get quantized. PyTorch's alternative (keeping BN live with
 * frozen statistics) matters for long QAT runs from scratch, not for a few epochs of fine-tuning.
 *
 * The fp32 model is not modified: the QatModel holds copies of its weights, under the same names.
 */
import { ErrorCode, KilnError } from '../errors.js';
import { BatchNorm2d } from '../nn/layers/batch-norm2d.js';
import { Conv2d } from '../nn/layers/conv2d.js';
import { Dropout } from '../nn/layers/dropout.js';
import { Flatten } from '../nn/layers/flatten.js';
import { Linear } from '../nn/layers/linear.js';
import { MaxPool2d } from '../nn/layers/max-pool2d.js';
import { ReLU } from '../nn/layers/relu.js';
import { Sequential } from '../nn/layers/sequential.js';
import { checkKeys } from '../nn/layers/checks.js';
import { Module } from '../nn/module.js';
import { moduleFromConfig } from '../nn/registry.js';
import { boolean, number, oneOf, optional, options as checkOptions, shapeError, typeError } from '../validate.js';
import { ActivationFakeQuant, DEFAULT_OBSERVER_MOMENTUM } from './qat-activation.js';
import { QatModel } from './qat-model.js';
import { QatWeighted } from './qat-weighted.js';
import { QUANT_KINDS, type QuantKind } from './qparams.js';

export interface PrepareQatOptions {
  /** Weight of each training batch in the moving-average activation ranges, in (0, 1] (default 0.01). */
  observerMomentum?: number;
  /** Weight scales per output channel (default true) or one per tensor, as convertToInt8's option. */
  perChannel?: boolean;
  /** Activations 'uint8' asymmetric (default) or 'int8' symmetric, as convertToInt8's option. */
  activations?: QuantKind;
}

/** Layer types a QatModel can hold (everything else has no int8 form yet). */
const SUPPORTED = 'Conv2d, Linear, ReLU, MaxPool2d, Flatten, Dropout and BatchNorm2d after a Conv2d';

/**
 * Wraps a trained fp32 model for quantization-aware training (see the file comment for where it
 * quantizes). The result is a Module: train it with `train()`, evaluate it with `evaluate()`.
 * @param module a Sequential (nested ones are flattened) or a single layer
 * @throws KilnError ERR_KILN_UNSUPPORTED_OP naming a layer with no int8 form
 */
export function prepareQat(module: Module, options?: PrepareQatOptions): QatModel {
  if (!(module instanceof Module)) throw typeError('module', 'a Module', module);
  const opts = checkOptions<PrepareQatOptions>('options', options);
  checkKeys('options', opts, ['observerMomentum', 'perChannel', 'activations']);
  const momentum = optional(opts.observerMomentum, DEFAULT_OBSERVER_MOMENTUM, (v) => number('options.observerMomentum', v, 0, 1, true));
  const perChannel = optional(opts.perChannel, true, (v) => boolean('options.perChannel', v));
  const kind = optional<QuantKind>(opts.activations, 'uint8', (v) => oneOf('options.activations', v, QUANT_KINDS));
  const layers = leaves(module);
  const lastWeighted = layers.reduce((last, l, i) => (l instanceof Conv2d || l instanceof Linear ? i : last), -1);
  if (lastWeighted < 0) throw new KilnError(ErrorCode.UNSUPPORTED_OP, 'Expected a model with at least one Conv2d or Linear for module but received none');

  const stages: Module[] = [new ActivationFakeQuant('input', momentum, kind)];
  for (let i = 0; i < layers.length; i++) {
    const layer = layers[i];
    if (layer instanceof Conv2d || layer instanceof Linear) {
      const bn = layer instanceof Conv2d && layers[i + 1] instanceof BatchNorm2d ? (layers[++i] as BatchNorm2d) : undefined;
      const weighted = new QatWeighted(bn ? foldedConv(layer as Conv2d, bn) : copyLayer(layer), perChannel);
      stages.push(weighted);
      if (layers[i + 1] instanceof ReLU) {
        stages.push(new ReLU());
        i++;
      }
      // Max-pooling commutes with the monotonic fake-quant (same values, same range), so quantizing
      // after the pools touches a quarter of the elements (2x2 pools) for the same forward.
      while (layers[i + 1] instanceof MaxPool2d) stages.push(moduleFromConfig(layers[++i].config()));
      if (i < lastWeighted) stages.push(new ActivationFakeQuant(`${layer.weight.name.replace(/weight$/, '')}output`, momentum, kind));
    } else if (layer instanceof ReLU || layer instanceof MaxPool2d || layer instanceof Flatten || layer instanceof Dropout) {
      stages.push(moduleFromConfig(layer.config()));
    } else {
      throw new KilnError(ErrorCode.UNSUPPORTED_OP, `Expected only ${SUPPORTED} for module but received a ${layer.config().type} (layer ${i})`);
    }
  }
  return new QatModel(stages, { perChannel, activations: kind }, module.inputShape);
}

/** The leaf layers of a model in forward (declared) order. */
function leaves(module: Module): Module[] {
  return module instanceof Sequential ? module.layers.flatMap(leaves) : [module];
}

/** A fresh copy of a Conv2d or Linear with the same configuration, weights and parameter names. */
function copyLayer<L extends Conv2d | Linear>(layer: L): L {
  const copy = moduleFromConfig(layer.config()) as L;
  copy.weight.value.data.set(layer.weight.value.data);
  copy.weight.name = layer.weight.name;
  if (layer.bias && copy.bias) {
    copy.bias.value.data.set(layer.bias.value.data);
    copy.bias.name = layer.bias.name;
  }
  return copy;
}

/** A Conv2d (with bias) computing conv followed by the eval-mode BatchNorm2d. */
function foldedConv(conv: Conv2d, bn: BatchNorm2d): Conv2d {
  if (bn.channels !== conv.outChannels) {
    throw shapeError(`${bn.runningMean.name.replace(/running_mean$/, '')}channels`, `${conv.outChannels} channels (the Conv2d before it)`, `${bn.channels}`);
  }
  const folded = moduleFromConfig({ ...conv.config(), bias: true }) as Conv2d;
  folded.weight.name = conv.weight.name;
  folded.bias!.name = conv.bias?.name ?? conv.weight.name.replace(/weight$/, 'bias');
  const w = conv.weight.value.data;
  const per = w.length / conv.outChannels;
  const [gamma, beta] = [bn.weight.value.data, bn.bias.value.data];
  const [mean, variance] = [bn.runningMean.value.data, bn.runningVar.value.data];
  for (let o = 0; o < conv.outChannels; o++) {
    const factor = gamma[o] / Math.sqrt(variance[o] + bn.eps);
    for (let k = o * per; k < (o + 1) * per; k++) folded.weight.value.data[k] = w[k] * factor;
    const b = conv.bias ? conv.bias.value.data[o] : 0;
    folded.bias!.value.data[o] = (b - mean[o]) * factor + beta[o];
  }
  return folded;
}
