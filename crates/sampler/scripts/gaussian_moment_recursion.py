# Exact mean/covariance recursion of the annealed Langevin chain for a linear-Gaussian problem like
# tests/gaussian_posterior.rs (its own random A and y): deterministic bias of the sampler vs the exact posterior.
import numpy as np
def run(N=16,M=8,v=0.01,sig=0.1,s1=1.0,sT=0.005,T=40,K=50,r=0.3,seed=0):
    rng=np.random.default_rng(seed)
    A=rng.normal(0,1/np.sqrt(M),(M,N))
    mu=np.full(N,0.5)+rng.uniform(-0.1,0.1,N)
    vv=np.full(N,v)
    x=mu+np.sqrt(vv)*rng.normal(size=N)
    y=A@x+sig*rng.normal(size=M)
    P=np.diag(1/vv)+A.T@A/sig**2
    C=np.linalg.inv(P); m=C@(mu/vv+A.T@y/sig**2)
    eps=r*sT**2
    sig_c=np.exp(np.linspace(np.log(s1),np.log(sT),T))
    mean=np.full(N,0.5); cov=np.eye(N)/12
    an=(A*A).sum(1)
    for s in sig_c:
        a=eps*(s/sT)**2
        S=sig**2+s**2*an
        Pc=np.diag(1/(vv+s**2))+A.T@np.diag(1/S)@A
        bc=mu/(vv+s**2)+A.T@(y/S)
        F=np.eye(N)-a*Pc
        ev=np.linalg.eigvalsh(Pc)
        assert a*ev.max()<2, (s,a*ev.max())
        for k in range(K):
            mean=F@mean+a*bc
            cov=F@cov@F.T+2*a*np.eye(N)
    sd=np.sqrt(np.diag(C)); sdc=np.sqrt(np.diag(cov))
    return np.abs(mean-m)/sd, np.abs(sdc/sd-1), sd, np.abs(m-mu)/sd
for (T,K,r,sT) in [(20,50,0.45,0.005),(20,30,0.45,0.005),(10,60,0.45,0.005),(20,50,0.45,0.01),(15,40,0.45,0.005)]:
    a,b,sd,shift=run(T=T,K=K,r=r,sT=sT,sig=0.05)
    print(T,K,r,sT,"mean bias/sd max %.3f"%a.max(),"std rel bias max %.4f"%b.max(),"sd range",sd.min(),sd.max(),"shift/sd max",shift.max())
