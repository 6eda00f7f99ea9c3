"""DACS on a tiny segmentor: step order, DDP-path equivalence, source-only, debug images."""
import copy

import pytest
import torch
from mmengine.optim import OptimWrapper

from mmseg.models.uda import DACS
from tests.test_models.test_uda.uda_helpers import build_dacs, storage_ids, uda_batch


class RecordingOptimWrapper(OptimWrapper):
    """Records backward/step/zero_grad calls (and the gradients seen at step)."""

    def __init__(self, model, calls):
        super().__init__(torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                                         lr=0.1))
        self.calls, self.model, self.grads = calls, model, None

    def backward(self, loss, **kwargs):
        self.calls.append('backward')
        super().backward(loss, **kwargs)

    def step(self, **kwargs):
        self.calls.append('step')
        self.grads = {n: p.grad.clone() for n, p in self.model.named_parameters()
                      if p.grad is not None}
        super().step(**kwargs)

    def zero_grad(self, **kwargs):
        self.calls.append('zero_grad')
        super().zero_grad(**kwargs)


def record(model, calls, names):
    for name in names:
        method = getattr(model, name)

        def wrapped(*args, _method=method, _name=name, **kwargs):
            calls.append(_name)
            return _method(*args, **kwargs)
        setattr(model, name, wrapped)


STEPS = ['_update_teacher', '_source_losses', '_pseudo_label', '_mix', '_mixed_losses',
         '_maybe_save_debug_images']


def test_train_step_order_of_steps_and_optimiser_calls():
    model, calls = build_dacs(), []
    record(model, calls, STEPS)
    optim = RecordingOptimWrapper(model, calls)
    log_vars = model.train_step(uda_batch(), optim)
    assert calls == ['_update_teacher', '_source_losses', 'backward', '_pseudo_label', '_mix',
                     '_mixed_losses', 'backward', '_maybe_save_debug_images', 'step',
                     'zero_grad']
    assert set(log_vars) == {'loss', 'decode.loss_seg', 'decode.acc_seg', 'mix.decode.loss_seg',
                             'mix.decode.acc_seg', 'mix.pseudo_weight'}
    assert torch.allclose(log_vars['loss'],
                          log_vars['decode.loss_seg'] + log_vars['mix.decode.loss_seg'])
    assert int(model.local_iter) == 1


def test_loss_path_gives_the_gradient_of_two_backwards():
    """DDP path (one backward of the summed losses) == train_step's two backwards."""
    single = build_dacs()
    ddp_like = copy.deepcopy(single)
    torch.manual_seed(7)
    optim = RecordingOptimWrapper(single, [])
    single.train_step(uda_batch(), optim)
    torch.manual_seed(7)
    data = ddp_like.data_preprocessor(uda_batch(), True)
    losses = ddp_like(**data, mode='loss')
    assert {'decode.loss_seg', 'mix.decode.loss_seg'} <= set(losses)
    total, _ = ddp_like.parse_losses(losses)
    total.backward()
    for name, grad in optim.grads.items():
        assert torch.equal(dict(ddp_like.named_parameters())[name].grad, grad), name
    assert int(ddp_like.local_iter) == 1


def test_teacher_follows_the_student_over_iterations():
    model = build_dacs()
    optim = OptimWrapper(torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                                         lr=0.5))
    weight = 'decode_head.conv_seg.weight'
    model.train_step(uda_batch(), optim)        # iteration 0: teacher := student (before step)
    student_after_0 = dict(model.model.named_parameters())[weight].detach().clone()
    teacher_0 = model.teacher.tensors()[weight].clone()
    model.train_step(uda_batch(seed=2), optim)  # iteration 1: alpha_t = 0.5
    expected = 0.5 * teacher_0 + 0.5 * student_after_0
    assert torch.equal(model.teacher.tensors()[weight], expected)


def test_frozen_weights_are_stored_once_over_student_and_teacher():
    model = build_dacs()
    frozen = list(model.model.backbone.stem.parameters())
    everything = storage_ids(list(model.model.parameters()) + list(model.teacher.parameters())
                             + list(model.buffers()))
    for param in frozen:
        assert everything.count(storage_ids([param])[0]) == 1
    assert not any(name.startswith('teacher.') and 'stem' in name for name in model.state_dict())


def test_source_only_builds_no_teacher_and_ignores_the_target():
    model = build_dacs(source_only=True)
    assert model.teacher is None
    calls = []
    optim = RecordingOptimWrapper(model, calls)
    log_vars = model.train_step(uda_batch(), optim)
    assert calls == ['backward', 'step', 'zero_grad']
    assert set(log_vars) == {'loss', 'decode.loss_seg', 'decode.acc_seg'}


def test_ipkl_source_step_is_the_segmentor_objective():
    model = build_dacs(ipkl=True)
    data = model.data_preprocessor(uda_batch(), True)
    losses = model(**data, mode='loss')
    assert {'decode_w_seg.loss_seg', 'decode_wo_seg.loss_seg', 'consistency_loss',
            'mix.decode.loss_seg'} <= set(losses)


def test_missing_target_and_bad_arguments_raise():
    model = build_dacs()
    data = uda_batch()
    del data['target_inputs'], data['target_data_samples']
    with pytest.raises(ValueError, match='no target_inputs'):
        model.train_step(data, OptimWrapper(torch.optim.SGD(model.model.parameters(), lr=0.1)))
    with pytest.raises(ValueError, match="mix must be 'class'"):
        build_dacs(mix='cut')
    with pytest.raises(TypeError):
        build_dacs(pseudo_treshold=0.9)   # misspelt key fails at build time


def test_debug_images_every_interval(tmp_path):
    model = build_dacs(debug_img_interval=2)
    model.debug_dir = tmp_path
    optim = OptimWrapper(torch.optim.SGD([p for p in model.parameters() if p.requires_grad],
                                         lr=0.1))
    for seed in range(3):
        model.train_step(uda_batch(size=64, seed=seed), optim)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        '000000_0.png', '000000_1.png', '000002_0.png', '000002_1.png']


def test_inference_passes_through_to_the_segmentor():
    model = build_dacs().eval()
    data = model.data_preprocessor(uda_batch(), False)
    wrapped = model(data['inputs'], data['data_samples'], mode='predict')
    direct = model.model.predict(data['inputs'], data['data_samples'])
    assert torch.equal(wrapped[0].pred_sem_seg.data, direct[0].pred_sem_seg.data)
    assert model.data_preprocessor is model.model.data_preprocessor
    assert isinstance(model, DACS)
