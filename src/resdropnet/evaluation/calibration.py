"""Temperature scaling: one number that divides a model's logits so that its confidences match its accuracy."""

import torch
import torch.nn.functional as F


def fit_temperature(logits, labels, steps: int = 50) -> float:
    """The temperature T minimising the negative log-likelihood of softmax(logits / T) on (logits, labels):
    fit on PublicTest, it leaves every prediction as it was and changes only how sure each one says it is."""
    logits, labels = torch.as_tensor(logits, dtype=torch.float64), torch.as_tensor(labels).long()
    log_t = torch.zeros((), dtype=torch.float64, requires_grad=True)  # T = exp(log_t) stays positive
    optimizer = torch.optim.LBFGS([log_t], lr=0.5, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def negative_log_likelihood(logits, labels, temperature: float = 1.0) -> float:
    return float(F.cross_entropy(torch.as_tensor(logits, dtype=torch.float64) / temperature,
                                 torch.as_tensor(labels).long()))
