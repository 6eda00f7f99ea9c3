# ACDC test (2000 images of the four conditions, labels withheld) at 960x540,
# for a test-server submission: the dataloader, and the SubmissionWriter that writes the
# server's layout and zip to out_dir (no metric; mmseg/evaluation/submission.py). The dataset
# is defined once in dg_val_domains.py (domain_test_datasets). A config with target_domains
# gets the same from `tools/test.py CONFIG CKPT --format-only --out DIR --domains acdc`.
_base_ = ['./dg_val_domains.py']
test_dataloader = dict(_base_.val_loader, dataset=_base_.domain_test_datasets.acdc)
test_evaluator = dict(type='SubmissionWriter', benchmark='acdc', out_dir='submissions')
