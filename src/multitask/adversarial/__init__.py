"""Adversarial multi-task learning: gradient reversal, a task discriminator, and the game in a `Strategy`.

``Strategy(adversary=Adversary(...))`` trains a task discriminator on the model's shared features
(`multitask.models.MultiTaskModel.shared_features`) and pushes the shared encoder to fool it,
either through a gradient reversal layer or by alternating steps; see `Adversary`.
"""

from multitask.adversarial._adversary import SCHEMES, Adversary, Scheme
from multitask.adversarial._discriminator import TaskDiscriminator
from multitask.adversarial._plot import plot_adversary
from multitask.adversarial._probe import probe_task_accuracy, shared_features
from multitask.adversarial._reversal import GradientReversal, reverse_gradient
from multitask.adversarial._schedules import ConstantSchedule, DANNSchedule, Schedule
from multitask.adversarial._text_encoder import BagOfEmbeddings

__all__ = [
    "SCHEMES",
    "Adversary",
    "BagOfEmbeddings",
    "ConstantSchedule",
    "DANNSchedule",
    "GradientReversal",
    "Schedule",
    "Scheme",
    "TaskDiscriminator",
    "plot_adversary",
    "probe_task_accuracy",
    "reverse_gradient",
    "shared_features",
]
