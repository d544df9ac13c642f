#!/usr/bin/env python3
"""Writes the seed corpus of tests/robustness/fuzz_ops.c into fuzz/corpus/.

Each seed is a small hand-written program in fuzz_ops' byte format (see the
decoder in fuzz_ops.c): commands NEW (0), OP (3), READ (12), MISC (13) over 8
tensor slots; an argument is a slot (0-7), NULL (8), another context's
tensor (9), x (10), y (11) or a new tensor made for its role (12).

    python3 fuzz/make_corpus.py          # rewrites fuzz/corpus/seed-*
"""
import os
import struct

NEW, OP, READ, MISC = 0, 3, 12, 13
SLOT_NULL, FOREIGN, SAME_X, SAME_Y, AUTO = 8, 9, 10, 11, 12
INSTANCE, GROUP, LAYER, ADAIN, MODULATE, STATS, MIX, CIN, CONVERT = range(9)
F32, F16 = 0, 1
NCHW, NHWC = 0, 1


def dim(v):
    """Byte for a dimension 1..64."""
    assert 1 <= v <= 64
    return [v - 1] if v <= 8 else [0x80 | (v - 1)]


def fill(pattern=0x10, seed=1, raw=None):
    """pattern: mode = pattern % 10 (0 normal, 2 constant planes, 3 small
    integers, 5/9 with NaN/Inf, 6 1000 + noise, 7 raw values, 8 bad mask)."""
    out = [pattern] + list(struct.pack('<I', seed))
    if raw is not None:
        for v in raw:
            out += list(struct.pack('<h', int(v * 256)))
    return out


def desc(n, c, h, w, dtype=F32, layout=NCHW):
    return dim(n) + dim(c) + dim(h) + dim(w) + [dtype, layout, 0]


def new(slot, n, c, h, w, dtype=F32, layout=NCHW, pattern=0x10, seed=1, mask=False, raw=None):
    return [NEW, slot, 4 if mask else 0] + desc(n, c, h, w, dtype, layout) + fill(pattern, seed, raw)


def raw_new(slot, n, c, h, w, e, mode=5):
    return [NEW, slot, mode, n, c, h, w, e]


def auto(role_bytes=(), pattern=0x10, seed=7):
    """A new tensor for the role (role_bytes: what the role decodes)."""
    return [AUTO] + list(role_bytes) + [0] + fill(pattern, seed)


def f32(v):
    return list(struct.pack('<f', v))


def params(unbiased=0, act=0, eps_choice=0, eps_raw=None, slope_choice=None, slope_raw=None,
           mask=None, style_mask=None, null=False):
    """act: 0 none, 1 relu, 2 leaky, 3 silu, 4 -1, 5 4 (invalid).
    eps_choice: 0 1e-5, 1 0, 2 1e-3, 3 1, 4 raw, 5 -1e-5, 6 NaN, 7 Inf."""
    if null:
        return [1]
    b = (unbiased << 1) | (act << 2)
    if slope_choice is not None and act != 2:
        b |= 7 << 5
    out = [b, eps_choice] + (f32(eps_raw) if eps_choice == 4 else [])
    if act == 2 or slope_choice is not None:
        sc = 0 if slope_choice is None else slope_choice
        out += [sc] + (f32(slope_raw) if sc == 7 else [])
    m = 0
    tail = []
    if mask is not None:
        m |= 1
        tail += mask
    if style_mask is not None:
        m |= 4
        tail += style_mask
    return out + [m] + tail


def alpha(choice=0, raw=None):
    """0 1, 1 0, 2 0.5, 3 -0.5, 4 2, 5 NaN, 6 Inf, 7 raw."""
    return [choice] + (f32(raw) if choice == 7 else [])


def op(kind, *parts):
    out = [OP, kind]
    for p in parts:
        out += list(p)
    return out


def x_new(n, c, h, w, dtype=F32, layout=NCHW, pattern=0x10, seed=3):
    return [AUTO] + desc(n, c, h, w, dtype, layout) + fill(pattern, seed)


Y = [AUTO, 0] + fill()          # y: x's desc, then its (irrelevant) fill
CHANNEL = auto(())              # 1 x C x 1 x 1
SAMPLE = auto(())               # N x C x 1 x 1
STATS_OUT = auto(())


def style(same_n=True, h=None, w=None, pattern=0x10, seed=9):
    b = (0 if same_n else 1) | (2 if h is None else 0) | (4 if w is None else 0)
    role = [b] + (dim(h) if h is not None else []) + (dim(w) if w is not None else [])
    return auto(role, pattern, seed)


def mask_auto(per_sample=True, pattern=0x03, seed=11):
    # pattern % 10 < 5 on a mask role: a valid mask (weights in [0, 1], zeros)
    return [AUTO, 0 if per_sample else 1, 0] + fill(pattern, seed)


def mix_weight(choice=0, raw=None):
    """0 0.5, 1 1, 2 -0.5, 3 2, 4 0, 5 NaN, 6 -Inf, 7 raw."""
    return [choice] + (f32(raw) if choice == 7 else [])


seeds = {}

# 1. each op on FLOAT32 NCHW with new tensors for every role
seeds['instance-f32'] = op(INSTANCE, x_new(2, 3, 5, 7), Y, CHANNEL, CHANNEL, params())
seeds['instance-f16-nhwc'] = op(INSTANCE, x_new(2, 5, 4, 6, F16, NHWC), Y, CHANNEL, CHANNEL, params(eps_choice=2))
seeds['group-f32'] = op(GROUP, x_new(2, 6, 5, 5), Y, CHANNEL, CHANNEL, [1], params())
seeds['group-f16-nhwc'] = op(GROUP, x_new(1, 8, 3, 9, F16, NHWC), Y, CHANNEL, CHANNEL, [2], params(act=3))
seeds['group-bad-groups'] = op(GROUP, x_new(1, 6, 3, 3), Y, CHANNEL, CHANNEL, [254], params())
seeds['layer'] = op(LAYER, x_new(3, 4, 6, 2), Y, CHANNEL, [SLOT_NULL], params(act=1))
seeds['adain'] = op(ADAIN, x_new(2, 3, 8, 8), Y, style(), alpha(), params())
seeds['adain-style-n1-other-size'] = op(ADAIN, x_new(2, 4, 6, 6), Y, style(False, 3, 9), alpha(2), params())
seeds['adain-f16-nhwc-blend'] = op(ADAIN, x_new(2, 3, 5, 5, F16, NHWC), Y, style(True, 4, 4), alpha(3),
                                   params(act=2, slope_choice=1))
seeds['modulate'] = op(MODULATE, x_new(2, 3, 4, 4), Y, SAMPLE, SAMPLE, params())
seeds['modulate-null-scale'] = op(MODULATE, x_new(2, 3, 4, 4), Y, [SLOT_NULL], SAMPLE, params())
seeds['stats'] = op(STATS, x_new(2, 3, 9, 9), STATS_OUT, STATS_OUT, params(unbiased=1))
seeds['stats-mean-only-nhwc'] = op(STATS, x_new(1, 7, 5, 3, F16, NHWC), STATS_OUT, [SLOT_NULL], params())
seeds['stats-both-null'] = op(STATS, x_new(1, 2, 2, 2), [SLOT_NULL], [SLOT_NULL], params())
seeds['mix-2'] = op(MIX, x_new(2, 3, 6, 6), Y, [1], style(), mix_weight(0), style(False, 3, 3), mix_weight(3),
                    [0], alpha(2), params())
seeds['mix-3-negative'] = op(MIX, x_new(1, 4, 5, 5), Y, [2], style(), mix_weight(2), style(), mix_weight(1),
                             style(True, 2, 7), mix_weight(4), [0], alpha(), params(act=1))
seeds['mix-64'] = op(MIX, x_new(1, 2, 3, 3), Y, [241]) + sum(
    [style() + mix_weight(k % 4) for k in range(6)], []) + [0] + alpha() + params()
seeds['mix-65'] = op(MIX, x_new(1, 2, 3, 3), Y, [242]) + sum(
    [style() + mix_weight(0) for k in range(6)], []) + [0] + alpha() + params()
seeds['mix-0'] = op(MIX, x_new(1, 2, 3, 3), Y, [240], [0], alpha(), params())
seeds['cin'] = op(CIN, x_new(2, 3, 5, 5), Y, [2], auto(()), auto(()), auto(()), params())
seeds['convert-f32-f16-nhwc'] = op(CONVERT, x_new(2, 5, 3, 7), [AUTO, 3, 0] + fill())
seeds['convert-f16-nhwc-f32'] = op(CONVERT, x_new(2, 3, 4, 5, F16, NHWC), [AUTO, 0, 0] + fill())

# 2. masks
seeds['instance-mask'] = op(INSTANCE, x_new(2, 3, 6, 6), Y, CHANNEL, CHANNEL, params(mask=mask_auto()))
seeds['group-mask-shared'] = op(GROUP, x_new(2, 4, 5, 5, F32, NHWC), Y, CHANNEL, CHANNEL, [1],
                                params(unbiased=1, mask=mask_auto(False)))
seeds['adain-style-mask'] = op(ADAIN, x_new(2, 3, 5, 5), Y, style(True, 5, 5), alpha(),
                               params(mask=mask_auto(), style_mask=mask_auto()))
seeds['stats-bad-mask'] = op(STATS, x_new(2, 3, 4, 4), STATS_OUT, STATS_OUT,
                             params(mask=[AUTO, 0, 0] + fill(0x08, 5)))
seeds['instance-style-mask-refused'] = op(INSTANCE, x_new(1, 2, 3, 3), Y, CHANNEL, CHANNEL,
                                          params(style_mask=mask_auto()))

# 3. values: NaN/Inf planes, constant planes with eps 0, large means, raw values
seeds['nan-inf'] = op(INSTANCE, x_new(2, 3, 5, 5, pattern=0x05), Y, CHANNEL, CHANNEL, params(act=1))
seeds['nan-masked-out'] = new(0, 1, 2, 4, 4, pattern=0x45) + op(
    INSTANCE, [0], Y, [SLOT_NULL], [SLOT_NULL], params(mask=mask_auto()))
seeds['constant-eps0'] = op(INSTANCE, x_new(2, 3, 4, 4, pattern=0x02), Y, CHANNEL, CHANNEL, params(eps_choice=1))
seeds['constant-eps0-f16-nhwc'] = op(GROUP, x_new(1, 4, 3, 3, F16, NHWC, pattern=0x02), Y, CHANNEL, CHANNEL, [1],
                                     params(eps_choice=1))
seeds['mean-1000'] = op(ADAIN, x_new(2, 3, 16, 16, pattern=0x06), Y, style(), alpha(), params())
seeds['raw-values'] = new(0, 1, 2, 2, 3, pattern=0x07, raw=[1, 2, 3, -4, 0.5, 100, 7, 7, 7, 7, 7, 7]) + op(
    INSTANCE, [0], [SAME_X], [SLOT_NULL], [SLOT_NULL], params(unbiased=1))
seeds['denormal-eps'] = op(INSTANCE, x_new(1, 2, 3, 3, pattern=0x02), Y, CHANNEL, CHANNEL,
                           params(eps_choice=4, eps_raw=1e-45))
seeds['big-64k'] = op(INSTANCE, x_new(16, 16, 16, 16), Y, CHANNEL, CHANNEL, params())
seeds['big-plane'] = op(LAYER, x_new(1, 1, 64, 64), Y, CHANNEL, CHANNEL, params())

# 4. invalid arguments
seeds['eps-negative'] = op(INSTANCE, x_new(1, 2, 3, 3), Y, CHANNEL, CHANNEL, params(eps_choice=5))
seeds['eps-nan-inf'] = op(INSTANCE, x_new(1, 2, 3, 3), Y, CHANNEL, CHANNEL, params(eps_choice=6)) + op(
    STATS, [0], STATS_OUT, STATS_OUT, params(eps_choice=7))
seeds['activation-invalid'] = op(INSTANCE, x_new(1, 2, 3, 3), Y, CHANNEL, CHANNEL, params(act=4)) + op(
    INSTANCE, [0], [1], [SLOT_NULL], [SLOT_NULL], params(act=5))
seeds['slope-nan'] = op(INSTANCE, x_new(1, 2, 3, 3), Y, CHANNEL, CHANNEL, params(act=2, slope_choice=5))
seeds['alpha-nan-inf'] = op(ADAIN, x_new(1, 2, 3, 3), Y, style(), alpha(5), params()) + op(
    ADAIN, [0], [1], style(), alpha(6), params())
seeds['y-is-style'] = new(0, 1, 2, 3, 3) + new(1, 1, 2, 3, 3) + op(ADAIN, [0], [1], [1], alpha(), params())
seeds['in-place'] = new(0, 2, 3, 4, 4) + op(INSTANCE, [0], [SAME_X], CHANNEL, CHANNEL, params(act=3)) + [READ, 0]
seeds['foreign'] = op(INSTANCE, x_new(1, 2, 3, 3), Y, [FOREIGN, 0], CHANNEL, params()) + op(
    INSTANCE, [FOREIGN], [SLOT_NULL], [SLOT_NULL], [SLOT_NULL], params()) + op(INSTANCE, [0], [FOREIGN, 0], [SLOT_NULL],
                                                                     [SLOT_NULL], params())
seeds['null-x-y'] = op(INSTANCE, [SLOT_NULL], [SLOT_NULL], [SLOT_NULL], [SLOT_NULL], params(null=True))
seeds['convert-in-place'] = new(0, 1, 2, 3, 3) + op(CONVERT, [0], [SAME_X])
seeds['wrong-shapes'] = new(0, 1, 2, 3, 3) + new(1, 1, 3, 3, 3) + new(2, 1, 2, 1, 1) + op(
    INSTANCE, [0], [1], [2], [2], params()) + op(STATS, [0], [2], [SLOT_NULL], params())
seeds['raw-descs'] = raw_new(0, 0, 1, 1, 1, 0) + raw_new(1, 1, 1, 1, 1, 2) + raw_new(2, 1, 1, 1, 1, 8) + \
    raw_new(3, 2, 2, 2, 2, 0, 7) + [1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0]
seeds['misc'] = new(0, 2, 3, 4, 5) + [MISC, 0, 0, MISC, 1, 0, MISC, 2, 0, MISC, 3, 0, 1, MISC, 4, 0,
                                      MISC, 6, 0, 9, 9, 9, 9, MISC, 7, 0] + fill(0x10, 5) + [READ, 0, MISC, 5, 0]
seeds['profiling'] = [MISC, 3, 0, 1] + op(INSTANCE, x_new(1, 2, 3, 3), Y, CHANNEL, CHANNEL, params()) + \
    [MISC, 2, 0, MISC, 3, 0, 1, MISC, 3, 0, 0]

# 5. chains: outputs used as inputs
seeds['chain'] = new(0, 2, 4, 5, 5) + op(INSTANCE, [0], Y, CHANNEL, CHANNEL, params()) + \
    op(GROUP, [1], [SAME_X], CHANNEL, CHANNEL, [2], params(act=1)) + op(STATS, [1], STATS_OUT, STATS_OUT, params()) + \
    op(ADAIN, [0], [1], style(), alpha(2), params()) + [READ, 1]

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, 'corpus')
os.makedirs(out, exist_ok=True)
for name in os.listdir(out):
    if name.startswith('seed-'):
        os.remove(os.path.join(out, name))
for name, data in sorted(seeds.items()):
    with open(os.path.join(out, 'seed-' + name), 'wb') as f:
        f.write(bytes(b & 0xff for b in data))
print(len(seeds), 'seeds written to', out)
