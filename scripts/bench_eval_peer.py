"""NumPy peer of `cargo bench --bench eval`: weighted kNN (solo-learn recipe) on the same data.

Called by the bench with raw little-endian float32 / int64 files it wrote; prints one line
`seconds accuracy`. The recipe is solo-learn's `WeightedKNNClassifier` (cosine, k=20, T=0.07)
written in NumPy (OpenBLAS matmul, test tiles of 1024 rows, argpartition top-k).
"""
import sys
import time

import numpy as np


def weighted_knn(train, train_labels, test, k=20, t=0.07, tile=1024):
    train = train / np.maximum(np.linalg.norm(train, axis=1, keepdims=True), 1e-12)
    test = test / np.maximum(np.linalg.norm(test, axis=1, keepdims=True), 1e-12)
    classes = int(train_labels.max()) + 1
    preds = np.empty(len(test), dtype=np.int64)
    for start in range(0, len(test), tile):
        sim = test[start:start + tile] @ train.T
        idx = np.argpartition(-sim, k - 1, axis=1)[:, :k]
        s = np.take_along_axis(sim, idx, axis=1)
        w = np.exp(s / t)
        votes = np.zeros((len(sim), classes))
        np.add.at(votes, (np.arange(len(sim))[:, None], train_labels[idx]), w)
        preds[start:start + tile] = votes.argmax(axis=1)
    return preds


def main():
    train_x, train_y, test_x, test_y, n_train, n_test, dim = sys.argv[1:8]
    n_train, n_test, dim = int(n_train), int(n_test), int(dim)
    xtr = np.fromfile(train_x, dtype="<f4").reshape(n_train, dim)
    ytr = np.fromfile(train_y, dtype="<i8")
    xte = np.fromfile(test_x, dtype="<f4").reshape(n_test, dim)
    yte = np.fromfile(test_y, dtype="<i8")
    start = time.perf_counter()
    preds = weighted_knn(xtr, ytr, xte)
    seconds = time.perf_counter() - start
    print(f"{seconds} {(preds == yte).mean()}")


if __name__ == "__main__":
    main()
