"""SageMaker Clarify on the platform: bias metrics, explanations, and their drift.

- :mod:`.facets`: ``column=value`` / ``column>=number`` facets (the group compared);
- :mod:`.bias`: Clarify's pre-training (CI, DPL, KL, JS, LP, TVD, KS, CDDL) and
  post-training (DPPL, DI, DCAcc, DCR, RD, DAR, DRR, AD, CDDPL, TE, FT) metrics with its
  documented definitions, the bias report and the bias gate;
- :mod:`.explain`: per-row attributions in the model's raw output space that add up
  (XGBoost's own TreeSHAP, exact linear formulas, shap's TreeSHAP for random forests),
  summed back to the input columns;
- :mod:`.attribution`: global attributions, the attribution baseline stored with a
  version, NDCG attribution drift, the beeswarm plot;
- :mod:`.evidence`: what ``train_model`` computes, writes, gates and logs;
- :mod:`.window`: attribution drift and bias drift of a monitored capture window.

Plain Python (no Airflow). Heavy libraries are imported where they are used.
"""
