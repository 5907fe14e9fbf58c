#!/usr/bin/env python3
"""Writes the seed corpora (corpus/<target>/: small valid inputs) and the named
hostile cases of issue 25 (regressions/<target>/) that the fuzz harnesses
replay. Inputs found by fuzzing are copied into regressions/ by
scripts/fuzz.sh and are not made here. Rerun after editing; it only writes."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def put(kind, target, name, data):
    d = os.path.join(HERE, kind, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def npy(descr="<f4", shape="(2, 3)", fortran="False", data=b"", major=1, quote="'"):
    q = quote
    dq = "" if descr.startswith("[") else q  # a structured dtype is a list, not a string
    d = "{%sdescr%s: %s%s%s, %sfortran_order%s: %s, %sshape%s: %s, }" % (
        q, q, dq, descr, dq, q, q, fortran, q, q, shape)
    total = 10 + (2 if major > 1 else 0) + len(d) + 1
    d += " " * ((64 - total % 64) % 64) + "\n"
    pre = b"\x93NUMPY" + bytes([major, 0])
    hlen = struct.pack("<H", len(d)) if major == 1 else struct.pack("<I", len(d))
    return pre + hlen + d.encode() + data


def vecs(fmt, rows):
    return b"".join(struct.pack("<i", len(r)) + struct.pack("<%d%s" % (len(r), fmt), *r) for r in rows)


F = {"fvecs": "f", "bvecs": "B", "ivecs": "i"}

# ---- seeds: one valid file of each kind the readers accept ----
f4 = struct.pack("<6f", 1, 2, 3, 4, 5, 6)
put("corpus", "npy", "f4_2x3.npy", npy(data=f4))
put("corpus", "npy", "f2_2x2.npy", npy("<f2", "(2, 2)", data=struct.pack("<4e", 1, -2, 0.5, 65504)))
put("corpus", "npy", "f8_v2_double_quotes.npy", npy("<f8", "(1, 2)", data=struct.pack("<2d", 1, 2), major=2, quote='"'))
put("corpus", "npy", "u1_1d.npy", npy("|u1", "(3,)", data=bytes([1, 2, 3])))
put("corpus", "npy", "i4_3x2.npy", npy("<i4", "(3, 2)", data=struct.pack("<6i", 1, 2, 3, 4, 5, 6)))
put("corpus", "npy", "i8_fortran_2x2.npy", npy("<i8", "(2, 2)", "True", struct.pack("<4q", 1, 3, 2, 4)))
put("corpus", "npy", "f4_3d.npy", npy(shape="(1, 2, 3)", data=f4))
for t, fmt in F.items():
    put("corpus", t, "3x4." + t, vecs(fmt, [[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]))
    put("corpus", t, "1x1." + t, vecs(fmt, [[7]]))
cli = {
    "train_file": ["train", "x.npy", "-k", "3", "--niter=5", "--quiet"],
    "train_builtin": ["train", "--n", "1000", "--d", "8", "--centers", "4", "--data-seed", "7"],
    "train_all": ["train", "x.fvecs", "-k", "8", "--nredo", "2", "--seed", "-5", "--spherical",
                  "--int-centroids", "--metric", "ip", "--weights", "w.npy", "--init", "kmeans++",
                  "--backend", "cpu", "--device", "0", "--dtype", "float16", "--precision", "tf32",
                  "-o", "c.npy", "--labels", "l.ivecs", "--max-points-per-centroid", "64",
                  "--min-points-per-centroid", "1"],
    "assign": ["assign", "x.npy", "-c", "c.npy", "-o", "l.npy", "--distances", "d.fvecs", "-q"],
    "ivf": ["ivf", "x.npy", "-f", "IVF4,Flat", "-o", "a.index", "--add", "--niter", "3"],
    "help_train": ["help", "train"],
    "command_help": ["ivf", "--help"],
    "version": ["--version"],
    "double_dash": ["train", "-k", "2", "--", "-x.npy"],
}
for name, argv in cli.items():
    put("corpus", "cli_args", name, b"\0".join(a.encode() for a in argv))

# ---- named hostile cases (issue 25): each must give an IoError / UsageError ----
R = "regressions"
put(R, "npy", "empty_file.npy", b"")
put(R, "npy", "rows_2pow40.npy", npy(shape="(1099511627776, 4)", data=f4))
put(R, "npy", "shape_product_overflows_int64.npy", npy(shape="(1099511627776, 1099511627776, 1099511627776)"))
put(R, "npy", "negative_dimension.npy", npy(shape="(2, -3)", data=f4))
put(R, "npy", "zero_dimension.npy", npy(shape="(2, 0)"))
put(R, "npy", "zero_rows.npy", npy(shape="(0, 3)"))
put(R, "npy", "truncated_mid_row.npy", npy(data=f4[:16]))
put(R, "npy", "unknown_dtype_c8.npy", npy("<c8", data=f4 * 2))
put(R, "npy", "big_endian_dtype.npy", npy(">f4", data=f4))
put(R, "npy", "structured_dtype.npy", npy("[('a', '<f4')]", data=f4))
put(R, "npy", "shape_not_a_tuple.npy", npy(shape="6", data=f4))
put(R, "npy", "shape_entry_not_a_number.npy", npy(shape="(2, x)", data=f4))
put(R, "npy", "shape_unterminated.npy", npy(shape="(2, 3", data=f4))
put(R, "npy", "shape_entry_19_digits.npy", npy(shape="(1000000000000000000, 1)", data=f4))
put(R, "npy", "fortran_flag_not_bool.npy", npy(fortran="1", data=f4))
put(R, "npy", "fortran_flag_missing.npy", npy(data=f4).replace(b"'fortran_order'", b"'fortran_ordeX'"))
put(R, "npy", "header_length_past_end.npy", b"\x93NUMPY\x01\x00\xff\xff{'descr'")
put(R, "npy", "version_4.npy", npy(data=f4).replace(b"NUMPY\x01", b"NUMPY\x04", 1))
put(R, "npy", "magic_only.npy", b"\x93NUM")
for t, fmt in F.items():
    rows = vecs(fmt, [[1, 2, 3], [4, 5, 6]])
    put(R, t, "empty_file." + t, b"")
    put(R, t, "negative_dimension." + t, struct.pack("<i", -3) + rows[4:])
    put(R, t, "zero_dimension." + t, struct.pack("<i", 0) * 4)
    put(R, t, "dimension_2pow30." + t, struct.pack("<i", 1 << 30) + rows[4:])
    put(R, t, "dimension_2pow24_short_file." + t, struct.pack("<i", 1 << 24) + rows[4:])
    put(R, t, "truncated_mid_row." + t, rows[:-2])
    put(R, t, "header_cut_short." + t, rows[:2])
    put(R, t, "second_record_other_dimension." + t, rows[:len(rows) // 2] + struct.pack("<i", 5) + rows[len(rows) // 2 + 4:])
    put(R, t, "npy_file_renamed." + t, npy(data=f4))
hostile_cli = {
    "no_arguments": [],
    "empty_argument": ["train", ""],
    "value_missing_at_end": ["train", "x.npy", "--niter"],
    "switch_given_a_value": ["train", "--quiet=yes"],
    "equals_without_name": ["train", "--=5"],
    "short_flag_with_equals": ["train", "-k=3"],
    "lone_dash": ["assign", "-"],
    "integer_overflows_int64": ["train", "-k", "99999999999999999999999"],
    "integer_with_trailing_text": ["train", "-k", "3x"],
    "unknown_command_after_help": ["help", "cluster"],
    "unknown_top_level_option": ["--bogus"],
}
for name, argv in hostile_cli.items():
    put(R, "cli_args", name, b"\0".join(a.encode() for a in argv))
