# scikit-image 0.2x structural_similarity(data_range=1, channel_axis=0) re-implemented with scipy:
# uniform_filter(size=7, mode='reflect'), cov_norm = 49/48, K1=0.01, K2=0.03, crop pad=3, mean; mean over channels.
import numpy as np
from scipy.ndimage import uniform_filter
def ssim_channel(x, y, win=7, R=1.0):
    x = x.astype(np.float64); y = y.astype(np.float64)
    NP = win**2; cov_norm = NP/(NP-1)
    f = lambda a: uniform_filter(a, size=win, mode='reflect')
    ux, uy = f(x), f(y); uxx, uyy, uxy = f(x*x), f(y*y), f(x*y)
    vx = cov_norm*(uxx-ux*ux); vy = cov_norm*(uyy-uy*uy); vxy = cov_norm*(uxy-ux*uy)
    C1 = (0.01*R)**2; C2 = (0.03*R)**2
    S = (2*ux*uy+C1)*(2*vxy+C2)/((ux**2+uy**2+C1)*(vx+vy+C2))
    p = (win-1)//2
    return S[p:-p, p:-p].mean(dtype=np.float64)
def ssim(x, y): return np.mean([ssim_channel(x[c], y[c]) for c in range(x.shape[0])])
def psnr(x, y): return 10*np.log10(1/np.mean((x.astype(np.float64)-y.astype(np.float64))**2))
f32 = np.float32
# 8x8 ramp vs its transpose-ish: x[i,j] = (8i+j)/63, y[i,j] = (8j+i)/63 squared
i, j = np.meshgrid(np.arange(8), np.arange(8), indexing='ij')
ramp = ((8*i+j).astype(f32)/f32(63))[None]
rampT = ((8*j+i).astype(f32)/f32(63))[None]
print("ramp vs ramp^2      %.15f" % ssim(ramp, ramp*ramp))
print("ramp vs rampT       %.15f" % ssim(ramp, rampT))
print("psnr ramp vs rampT  %.15f" % psnr(ramp, rampT))
# 3-channel 9x11 pattern
c, i, j = np.meshgrid(np.arange(3), np.arange(9), np.arange(11), indexing='ij')
x = ((7*i + 3*j + 5*c) % 11).astype(f32)/f32(10)
y = ((i*i + 2*j + c) % 13).astype(f32)/f32(12)
print("pattern 3x9x11      %.15f" % ssim(x, y))
print("pattern ch0         %.15f" % ssim_channel(x[0], y[0]))
print("psnr pattern        %.15f" % psnr(x, y))
