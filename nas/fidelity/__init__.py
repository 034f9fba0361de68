"""Does the proxy rank architectures the way real training on the task does?

``python -m nas.fidelity`` draws a fixed set of architectures (``rows``), trains them for real
in two tiers (``tiers``), scores them with proxy recipes and training-free scores
(``scorers``), and measures how well each score ranks like the ground truth (``ranking``,
``analysis``). Every long step appends one line per finished run to a CSV (``ledger``), so a
killed run resumes where it stopped.
"""
