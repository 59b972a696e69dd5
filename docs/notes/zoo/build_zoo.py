"""Build /tmp/zoo/zoo.csv (curated) + zoo_extended.csv + zoo_all_tags.csv.

Accuracy/params/img_size/crop/interp come from timm's results/results-imagenet.csv
(huggingface/pytorch-image-models @ the fetched commit). GMACs and structural
descriptors are computed here with forward hooks on models built with pretrained=False.
"""
import csv, re, subprocess, sys, json, collections
import torch, torch.nn as nn, timm
from timm.utils.model import reparameterize_model

GIT = '/work/.mirror/huggingface+pytorch-image-models/repo'
COMMIT = subprocess.check_output(['git', f'--git-dir={GIT}', 'rev-parse', 'HEAD'], text=True).strip()
RES_FILE = 'results/results-imagenet.csv'
RES_COMMIT = subprocess.check_output(['git', f'--git-dir={GIT}', 'log', '-1', '--format=%H', 'HEAD', '--', RES_FILE], text=True).strip()
rows = list(csv.DictReader(open('/tmp/zoo/src/results-imagenet.csv')))
RES = collections.defaultdict(list)
for r in rows:
    RES[r['model']].append(r)
BENCH = {}
for r in csv.DictReader(open('/tmp/zoo/src/benchmark-infer-fp32-nchw-pt240-cpu-i9_10940x-dynamo.csv')):
    BENCH[r['model']] = r

FAMILY = [  # (regex on arch, family)
    (r'^seresnet', 'SE-ResNet'), (r'^resnet\d+d$', 'ResNet-D'), (r'^resnet', 'ResNet'),
    (r'^regnetx', 'RegNetX'), (r'^regnety', 'RegNetY'),
    (r'efficientnet_lite', 'EfficientNet-Lite'), (r'efficientnet_b', 'EfficientNet'),
    (r'^mobilenetv2', 'MobileNetV2'), (r'mobilenetv3', 'MobileNetV3'), (r'^mobilenetv4', 'MobileNetV4'),
    (r'mnasnet', 'MNASNet'), (r'^spnasnet', 'SPNASNet'), (r'^fbnetv3', 'FBNetV3'), (r'^fbnet', 'FBNet'),
    (r'^ghostnet', 'GhostNet'), (r'^repvgg', 'RepVGG'), (r'^mobileone', 'MobileOne'),
    (r'^convnext', 'ConvNeXt'), (r'^hardcorenas', 'HardCoReNAS'), (r'^rexnet', 'ReXNet'),
    (r'^mixnet', 'MixNet'), (r'^tinynet', 'TinyNet'), (r'^lcnet', 'LCNet'), (r'^dla', 'DLA'),
    (r'^densenet', 'DenseNet'), (r'^inception', 'Inception'),
]
def family(a):
    for rx, f in FAMILY:
        if re.search(rx, a):
            return f
    return 'other'

NOT_CLEAN = re.compile(r'in12k|in21k|in22k|jft|ssl|swsl|ig1b|dist|lvd|seer|swag')
def clean_in1k(tag):
    return tag.endswith('in1k') and not NOT_CLEAN.search(tag)

SE_RX = re.compile(r'^(SqueezeExcite\w*|SEModule|SEBlock|SqueezeExcitation|EffectiveSEModule|SEWeightModule)$')  # exact class names (DenseBlock must not match)
ACT_MAP = [  # class-name regex -> label (order matters)
    (r'hardswish|hard_swish|hswish', 'hswish'), (r'hardsigmoid|hard_sigmoid|sigmoid', 'gate'),
    (r'relu6', 'relu6'), (r'leakyrelu|prelu', 'lrelu'), (r'relu', 'relu'),
    (r'silu|swish', 'silu'), (r'gelu', 'gelu'), (r'mish', 'mish'), (r'tanh', 'tanh'),
]
def act_label(cls):
    n = cls.lower()
    for rx, lab in ACT_MAP:
        if re.search(rx, n):
            return lab
    return None

def analyse(model, size):
    """Return dict with MACs, depthwise/grouped MAC fractions, SE, activation shares."""
    macs = collections.Counter()
    act_elems = collections.Counter()
    se_calls = [0]
    se_names = [n for n, m in model.named_modules() if SE_RX.search(type(m).__name__)]
    def in_se(name):
        return any(name.startswith(s + '.') for s in se_names)
    hooks = []
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            def h(mod, inp, out, name=name):
                k = mod.kernel_size[0] * mod.kernel_size[1]
                mac = out.numel() * (mod.in_channels // mod.groups) * k
                if mod.groups > 1 and mod.groups == mod.in_channels:
                    macs['dw'] += mac
                elif mod.groups > 1:
                    macs['grouped'] += mac
                else:
                    macs['dense_conv'] += mac
                if in_se(name):
                    macs['se'] += mac
            hooks.append(m.register_forward_hook(h))
        elif isinstance(m, nn.Linear):
            def h(mod, inp, out, name=name):
                mac = out.numel() * mod.in_features
                macs['linear'] += mac
                if in_se(name):
                    macs['se'] += mac
            hooks.append(m.register_forward_hook(h))
        elif SE_RX.search(type(m).__name__):
            def h(mod, inp, out):
                se_calls[0] += 1
            hooks.append(m.register_forward_hook(h))
        else:
            lab = act_label(type(m).__name__)
            if lab and not list(m.children()):
                def h(mod, inp, out, name=name, lab=lab):
                    if not in_se(name) and torch.is_tensor(out):
                        act_elems[lab] += out.numel()
                hooks.append(m.register_forward_hook(h))
    with torch.no_grad():
        model(torch.randn(1, 3, size, size))
    for h in hooks:
        h.remove()
    total = macs['dw'] + macs['grouped'] + macs['dense_conv'] + macs['linear']
    acts = {k: v for k, v in act_elems.items() if k != 'gate'}
    tot_act = sum(acts.values()) or 1
    shares = sorted(((v / tot_act, k) for k, v in acts.items()), reverse=True)
    # main label: relu6 folded into relu for the coarse column
    coarse = collections.Counter()
    for s, k in shares:
        coarse['relu' if k == 'relu6' else k] += s
    main = '+'.join(k for k, s in sorted(coarse.items(), key=lambda x: -x[1]) if s >= 0.10) or 'none'
    return dict(
        gmacs=total / 1e9, dw_frac=macs['dw'] / total, grouped_frac=macs['grouped'] / total,
        se_mac_frac=macs['se'] / total, se_calls=se_calls[0], activation=main,
        act_detail=';'.join(f'{k}:{s:.2f}' for s, k in shares),
    )

def pick_row(name_tag, img_size):
    for r in RES.get(name_tag, []):
        if int(r['img_size']) == img_size:
            return r
    return None

def default_tag(arch):
    m = timm.create_model(arch, pretrained=False)
    return m.pretrained_cfg.get('tag')

def primary_tag(arch):
    d = default_tag(arch)
    if d and clean_in1k(d) and RES.get(f'{arch}.{d}'):
        return d
    for t in timm.list_pretrained(arch + '.*'):
        a, tag = t.split('.', 1)
        if a == arch and clean_in1k(tag) and RES.get(t):
            return tag
    raise RuntimeError(f'no clean in1k tag with results for {arch}')

def describe(arch, tag, cache={}):
    model = timm.create_model(f'{arch}.{tag}', pretrained=False).eval()
    cfg = model.pretrained_cfg
    size = cfg['input_size'][-1]
    test_size = (cfg.get('test_input_size') or [None])[-1]
    if size < 224 and test_size and test_size >= 224 and pick_row(f'{arch}.{tag}', test_size):
        size = test_size   # tv2 (176->224) / a3 (160->224) tags: cfg input_size is the train res; use eval res
    r = pick_row(f'{arch}.{tag}', size)
    if r is None:
        raise RuntimeError(f'{arch}.{tag}: no results row at {size}')
    key = (arch, size)
    if key not in cache:
        n_params = sum(p.numel() for p in model.parameters()) / 1e6
        train_form = analyse(model, size)
        dep = reparameterize_model(model)   # RepVGG/MobileOne/etc -> deploy form (no-op otherwise)
        deploy = analyse(dep, size)
        cache[key] = (n_params, train_form, deploy)
    n_params, train_form, deploy = cache[key]
    b = BENCH.get(arch, {})
    return dict(
        arch=arch, timm_name=arch, pretrained_tag=tag,
        top1=float(r['top1']), top5=float(r['top5']), params_m=float(r['param_count']),
        gmacs=round(deploy['gmacs'], 4), img_size=size, crop_pct=float(r['crop_pct']),
        interpolation=r['interpolation'],
        mean='/'.join(f'{x:.4f}' for x in cfg['mean']), std='/'.join(f'{x:.4f}' for x in cfg['std']),
        family=family(arch), depthwise_mac_fraction=round(deploy['dw_frac'], 4),
        has_se=int(deploy['se_calls'] > 0), activation=deploy['activation'],
        source_repo='huggingface/pytorch-image-models', source_file=RES_FILE, source_commit=COMMIT,
        # ---- extended-only columns ----
        cfg_crop_pct=cfg.get('crop_pct'), cfg_interpolation=cfg.get('interpolation'),
        test_input_size=(cfg.get('test_input_size') or [None])[-1],
        params_m_computed=round(n_params, 3), gmacs_train_form=round(train_form['gmacs'], 4),
        grouped_mac_fraction=round(deploy['grouped_frac'], 4), se_mac_fraction=round(deploy['se_mac_frac'], 4),
        se_blocks=deploy['se_calls'], act_detail=deploy['act_detail'],
        bench_infer_gmacs=b.get('infer_gmacs'), bench_img_size=b.get('infer_img_size'),
        timm_default_tag=default_tag(arch), clean_in1k=int(clean_in1k(tag)),
        results_file_last_commit=RES_COMMIT,
    )

MAIN_COLS = ['arch', 'timm_name', 'pretrained_tag', 'top1', 'top5', 'params_m', 'gmacs', 'img_size',
             'crop_pct', 'interpolation', 'mean', 'std', 'family', 'depthwise_mac_fraction', 'has_se',
             'activation', 'source_repo', 'source_file', 'source_commit']

CURATED = '''resnet18 resnet34 resnet50 resnet50d resnet101 resnet18d seresnet50
regnetx_002 regnetx_008 regnetx_016 regnetx_032 regnety_002 regnety_008 regnety_016 regnety_032
efficientnet_b0 efficientnet_b1 efficientnet_b2 efficientnet_b3
tf_efficientnet_lite0 tf_efficientnet_lite1 tf_efficientnet_lite2 tf_efficientnet_lite3 tf_efficientnet_lite4 efficientnet_lite0
mobilenetv2_100 mobilenetv2_140 mobilenetv3_large_100 mobilenetv3_large_150d mobilenetv4_conv_small mobilenetv4_conv_medium
mnasnet_100 semnasnet_100 fbnetc_100 fbnetv3_b fbnetv3_d fbnetv3_g
ghostnet_100 ghostnetv2_160 repvgg_a0 repvgg_a1 repvgg_a2 repvgg_b0
mobileone_s0 mobileone_s1 mobileone_s2 mobileone_s3 mobileone_s4
convnext_atto convnext_femto convnext_pico convnext_nano convnext_tiny
hardcorenas_a hardcorenas_f rexnet_100 rexnet_150 rexnet_200'''.split()
EXTRA_TAGS = [('resnet50', 'tv_in1k'), ('resnet50', 'tv2_in1k')]   # recipe variants kept in zoo.csv
EXTENDED_ONLY = '''regnetx_006 regnety_006 resnet34d resnet26d regnetx_004 regnety_004 regnety_040 spnasnet_100 ghostnetv2_100 ghostnetv2_130 ghostnetv3_100
hardcorenas_b hardcorenas_c hardcorenas_d hardcorenas_e rexnet_130 repvgg_b1g4 mobilenetv2_120d tf_mobilenetv3_large_100
mixnet_s mixnet_m mixnet_l tinynet_a lcnet_100 dla34 densenet121 inception_v3'''.split()

def main():
    print('torch', torch.__version__, 'timm', timm.__version__, 'commit', COMMIT, file=sys.stderr)
    main_rows, ext_rows, all_rows = [], [], []
    for arch in CURATED + EXTENDED_ONLY:
        tag = primary_tag(arch)
        d = describe(arch, tag)
        (main_rows if arch in CURATED else []).append(d)
        ext_rows.append(d)
        print(f"{arch:28s} {tag:22s} top1={d['top1']:.3f} gmacs={d['gmacs']:.3f} dw={d['depthwise_mac_fraction']:.2f} "
              f"se={d['has_se']} act={d['activation']}", file=sys.stderr, flush=True)
        # every in1k-trained tag of this arch that has a results row at its own input size
        for t in timm.list_pretrained(arch + '.*'):
            a, tg = t.split('.', 1)
            if a != arch or not tg.endswith('in1k') or not RES.get(t):
                continue
            try:
                all_rows.append(describe(arch, tg))
            except RuntimeError as e:
                print('  skip', e, file=sys.stderr)
    for arch, tag in EXTRA_TAGS:
        d = describe(arch, tag)
        main_rows.append(d); ext_rows.append(d)
    main_rows.sort(key=lambda d: (d['family'], d['gmacs']))
    ext_rows.sort(key=lambda d: (d['family'], d['gmacs']))
    with open('/tmp/zoo/zoo.csv', 'w', newline='') as f:
        w = csv.DictWriter(f, MAIN_COLS, extrasaction='ignore'); w.writeheader(); w.writerows(main_rows)
    ext_cols = MAIN_COLS + [k for k in ext_rows[0] if k not in MAIN_COLS]
    for fn, rs in (('zoo_extended.csv', ext_rows), ('zoo_all_tags.csv', all_rows)):
        with open('/tmp/zoo/' + fn, 'w', newline='') as f:
            w = csv.DictWriter(f, ext_cols); w.writeheader(); w.writerows(rs)
    print('rows: main', len(main_rows), 'extended', len(ext_rows), 'all_tags', len(all_rows), file=sys.stderr)

if __name__ == '__main__':
    main()
