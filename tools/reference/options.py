"""Constructor options of a reference model read back from its state_dict's shapes, so that a file of
any depth and width (narrow bundled models, full-size released weights) rebuilds without extra
metadata. Mirrors how segview reads widths from the tensors it loads."""


def _count(state, template, first=0):
    n = 0
    while template.format(first + n) in state:
        n += 1
    return n


def _resnet(state, prefix):
    layers = [_count(state, f"{prefix}layer{i}.{{}}.conv1.weight") for i in range(1, 5)]
    return dict(layers=layers, base_width=state[f"{prefix}layer1.0.conv1.weight"].shape[0])


def infer_options(arch, backbone, state):
    if arch.startswith("fcn"):
        widths = [state[f"conv{s}_1.weight"].shape[0] for s in range(1, 6)] + [state["fc6.weight"].shape[0]]
        return dict(num_classes=state["score_fr.weight"].shape[0], widths=tuple(widths))
    if arch == "deeplabv3plus":
        options = dict(backbone=backbone, num_classes=state["decoder.last_conv.8.weight"].shape[0],
                       head_channels=state["aspp.aspp1.atrous_conv.weight"].shape[0],
                       low_level_channels=state["decoder.conv1.weight"].shape[0])
        if backbone.startswith("resnet"):
            options.update(_resnet(state, "backbone."))
        elif backbone == "xception":
            blocks = 4  # middle-flow blocks have identity skips; the exit block is the next one
            while f"backbone.block{blocks}.rep.1.pointwise.weight" in state and f"backbone.block{blocks}.skip.weight" not in state:
                blocks += 1
            shape = lambda name: state[name].shape[0]
            options.update(middle_blocks=blocks - 4, widths=(
                shape("backbone.conv1.weight"), shape("backbone.conv2.weight"), shape("backbone.block1.skip.weight"),
                shape("backbone.block2.skip.weight"), shape("backbone.block3.skip.weight"),
                shape(f"backbone.block{blocks}.skip.weight"), shape("backbone.conv3.pointwise.weight"),
                shape("backbone.conv4.pointwise.weight"), shape("backbone.conv5.pointwise.weight")))
        elif backbone == "mobilenetv2":
            options.update(width_mult=state["backbone.features.0.0.weight"].shape[0] / 32)
        return options
    if arch == "refinenet":
        return dict(num_classes=state["clf_conv.weight"].shape[0], **_resnet(state, ""),
                    channels=(state["p_ims1d2_outl1_dimred.weight"].shape[0], state["p_ims1d2_outl2_dimred.weight"].shape[0]),
                    crp_stages=_count(state, "mflow_conv_g1_pool.0.{}_outvar_dimred.weight", first=1))
    if arch == "dfn":
        return dict(num_classes=state["smooth_heads.3.conv.weight"].shape[0], **_resnet(state, "backbone."),
                    smooth_channels=state["global_context.1.conv.weight"].shape[0],
                    border_channels=state["border_pre_rrbs.0.conv_1x1.weight"].shape[0])
    raise ValueError(f"unknown architecture {arch}")
