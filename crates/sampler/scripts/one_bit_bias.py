# numpy run of the annealed Langevin sampler on the 1-bit problem of tests/one_bit_posterior.rs with many
# chains, against grid quadrature: the bias left by discretisation and the σ_T smoothing.
import numpy as np
from scipy.special import log_ndtr
def phi_over_Phi(w):
    return np.exp(-0.5*w*w - 0.5*np.log(2*np.pi) - log_ndtr(w))
def setup(M=5, sig=0.05, seed=1):
    rng=np.random.default_rng(seed)
    th=-np.pi/4+np.linspace(-0.5,0.5,M)
    A=np.stack([np.cos(th),np.sin(th)],1)
    mu=np.array([0.5,0.45]); v=np.array([0.02,0.01])
    x=np.array([0.6,0.35])
    y=np.sign(A@x+sig*rng.normal(size=M))
    return A,mu,v,y,sig
def exact(A,mu,v,y,sig,n=1201):
    g0=np.linspace(mu[0]-7*np.sqrt(v[0]),mu[0]+7*np.sqrt(v[0]),n)
    g1=np.linspace(mu[1]-7*np.sqrt(v[1]),mu[1]+7*np.sqrt(v[1]),n)
    X0,X1=np.meshgrid(g0,g1,indexing='ij')
    lw=-0.5*((X0-mu[0])**2/v[0]+(X1-mu[1])**2/v[1])
    for m in range(len(y)):
        lw+=log_ndtr(y[m]*(A[m,0]*X0+A[m,1]*X1)/sig)
    w=np.exp(lw-lw.max()); w/=w.sum()
    c0=np.clip(X0,0,1); c1=np.clip(X1,0,1)
    m0=(w*c0).sum(); m1=(w*c1).sum()
    s0=np.sqrt((w*(c0-m0)**2).sum()); s1=np.sqrt((w*(c1-m1)**2).sum())
    pm=np.array([(w*X0).sum(),(w*X1).sum()])
    return np.array([m0,m1]),np.array([s0,s1]),pm
def sample(A,mu,v,y,sig,chains=1000,s1=1.0,sT=0.005,T=20,K=50,r=0.45,seed=0):
    rng=np.random.default_rng(seed)
    x=rng.uniform(size=(chains,2))
    eps=r*sT**2
    an=(A*A).sum(1)
    for s in np.exp(np.linspace(np.log(s1),np.log(sT),T)):
        a=eps*(s/sT)**2
        S=np.sqrt(sig**2+s**2*an)
        for k in range(K):
            z=x@A.T
            w=y*z/S
            g=y*phi_over_Phi(w)/S
            sc=-(x-mu)/(v+s**2)+g@A
            x=x+a*sc+np.sqrt(2*a)*rng.normal(size=x.shape)
    x=np.clip(x,0,1)
    return x.mean(0),x.std(0,ddof=1)
A,mu,v,y,sig=setup()
m,s,pm=exact(A,mu,v,y,sig)
for (T,K,r,sT) in [(20,50,0.45,0.005),(20,100,0.45,0.005),(20,50,0.2,0.005),(20,50,0.45,0.002),(40,50,0.45,0.0025)]:
    mm,ss=sample(A,mu,v,y,sig,chains=40000,T=T,K=K,r=r,sT=sT)
    print(T,K,r,sT,"bias/sd",(mm-m)/s,"std rel",ss/s-1, "SE/sd",1/200)
