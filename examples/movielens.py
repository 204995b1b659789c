"""MovieLens 100K as a two-objective recommender: predict the star rating and whether the user liked the movie.

A shared bottom (user and item embeddings, concatenated with the user's age, gender and occupation and the
movie's year and genres, then a two-layer MLP) feeds two heads: ``rating`` (regression, MSE) and ``liked``
(rating >= 4, binary cross-entropy). Trained with `multitask.Trainer` on the random 80/10/10 split by
interaction of `load_movielens_100k`; the epoch with the lowest validation loss is kept. Prints the test
RMSE of the rating head (next to predicting the training mean) and the test AUC of the liked head.

    python examples/movielens.py
    python examples/movielens.py --epochs 20 --weighting uw
"""

from __future__ import annotations

import argparse
import math
import time

import torch

from multitask import Strategy, Trainer, weighting
from multitask.data import load_movielens_100k
from multitask.models import HardSharing, RecommenderEncoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dim", type=int, default=32, help="embedding size")
    parser.add_argument("--batch-size", type=int, default=512)
    parser.add_argument("--weighting", default="ew", help=f"one of {weighting.names()}")
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    data = load_movielens_100k(seed=args.seed)
    train, val, test = data.dataset("train"), data.dataset("val"), data.dataset("test")
    side = train.columns["user_features"].shape[1] + train.columns["item_features"].shape[1]
    hidden = [128, 64]
    bottom = RecommenderEncoder(data.num_embeddings["user"], data.num_embeddings["item"], side, args.dim, hidden)
    tasks = data.make_tasks(hidden[-1])
    model = HardSharing(bottom, tasks, input_key=("user", "item", "user_features", "item_features"))
    trainer = Trainer(
        model,
        tasks,
        strategy=Strategy(weighting.create(args.weighting)),
        max_epochs=args.epochs,
        batch_size=args.batch_size,
        lr=1e-3,
        seed=args.seed,
        progress=False,
    )
    start = time.perf_counter()
    trainer.fit(train, val)
    seconds = time.perf_counter() - start
    results = trainer.evaluate(test)
    mean_rmse = float(((test.columns["rating"] - train.columns["rating"].mean()) ** 2).mean().sqrt())
    print(f"MovieLens 100K: {len(train)} training ratings, {args.epochs} epochs, {seconds:.0f} s of training")
    print("| task | test metric | value |\n|---|---|---|")
    print(f"| rating | RMSE | {math.sqrt(results['rating']['mse']):.4f} |")
    print(f"| rating | RMSE of the training mean | {mean_rmse:.4f} |")
    print(f"| liked | AUC | {results['liked']['auc']:.4f} |")
    print(f"| liked | accuracy | {results['liked']['accuracy']:.4f} |")


if __name__ == "__main__":
    main()
