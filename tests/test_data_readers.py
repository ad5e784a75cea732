"""Readers: tolerated quirks (BOM, CRLF, blank lines, spaces), string ids, exact timestamps, and
every error naming its file and line."""

from __future__ import annotations

import bz2
import gzip
import lzma
import zipfile
from pathlib import Path

import numpy as np
import pytest

from seqrec.data.readers import read_atomic, read_csv, read_s3rec
from seqrec.errors import DataError


def write(tmp_path: Path, name: str, text: str) -> Path:
    """Write ``text`` byte for byte (no newline translation) and return the path."""
    path = tmp_path / name
    path.write_bytes(text.encode("utf-8"))
    return path


# --- S3-Rec format -------------------------------------------------------------------------


def test_s3rec_tolerates_bom_crlf_blank_lines_and_spaces(tmp_path):
    path = write(tmp_path, "Tiny.txt", "\ufeff1 3 1  2\r\n\r\n  2\t5 3 \r\n   \n3 4 4 4\n")
    inter = read_s3rec(path)
    assert inter.users.tolist() == ["1", "1", "1", "2", "2", "3", "3", "3"]
    assert inter.item_ids.tolist() == [3, 1, 2, 5, 3, 4, 4, 4]  # ids kept as they are
    assert inter.lines.tolist() == [1, 1, 1, 3, 3, 5, 5, 5]
    assert inter.times is None


@pytest.mark.parametrize(
    "text, line, needle",
    [
        ("1 2 3\n2 4 x\n", 2, "'x' is not a positive integer"),
        ("1 2 3\n\n2 4 0\n", 3, "'0' is not a positive integer"),
        ("1 2 3\n2 -4 5\n", 2, "'-4' is not a positive integer"),
        ("1 2 3\n2 3\n1 5 6\n", 3, "already given on line 1"),
        # a hashed id beyond int64 (it used to end in an OverflowError traceback)
        ("1 2 3\n2 3 99999999999999999999\n", 2, "id 99999999999999999999 is larger than"),
    ],
)
def test_s3rec_errors_name_file_and_line(tmp_path, text, line, needle):
    path = write(tmp_path, "Bad.txt", text)
    with pytest.raises(DataError, match=needle) as err:
        read_s3rec(path)
    assert f"{path}, line {line}:" in str(err.value)


# --- atomic / CSV ---------------------------------------------------------------------------

ATOMIC = (
    "\ufeffuser_id:token\titem_id:token\trating:float\ttimestamp:float\r\n"
    "u1\t0\t5\t1609459200123456789\r\n"
    "\r\n"
    " u2 \t 007 \t3\t1609459200123456788\r\n"
    "u1\t7\t4\t1609459200123456790\r\n"
    "u3\tNaN\t1\t5\r\n"
)


def test_atomic_keeps_string_ids_and_exact_integer_timestamps(tmp_path):
    inter = read_atomic(write(tmp_path, "x.inter", ATOMIC))
    assert inter.users.tolist() == ["u1", "u2", "u1", "u3"]
    assert inter.items.tolist() == ["0", "007", "7", "NaN"]  # "007" != "7"; "0", "NaN" items
    assert inter.lines.tolist() == [2, 4, 5, 6]
    assert inter.times.dtype == np.int64
    # 19 digits: float64 would round these three to the same value.
    assert inter.times.tolist() == [1609459200123456789, 1609459200123456788, 1609459200123456790, 5]
    assert inter.item_ids is None


def test_csv_with_own_columns_separator_and_quotes(tmp_path):
    text = 'when;who;what;note\n3;a;x;"b;c"\n1; b ;y;plain\n'
    inter = read_csv(write(tmp_path, "log.csv", text), user_col="who", item_col="what", time_col="when", sep=";")
    assert inter.users.tolist() == ["a", "b"]
    assert inter.items.tolist() == ["x", "y"]
    assert inter.times.tolist() == [3, 1]


def test_quoted_fields_spanning_lines_like_amazon_review_texts(tmp_path):
    text = (
        "reviewerID,asin,reviewText,unixReviewTime\n"
        'A1,B01,"Great.\r\n\r\nWould buy, again ""really""",1369699200\n'
        "A1,B02,ok,1369699100\n"
        'A2,B01,"multi\nline",1369699300\n'
        'A2,B03,12" vinyl,1369699400\n'
    )  # a quote inside an unquoted field is literal
    inter = read_csv(
        write(tmp_path, "reviews.csv", text), user_col="reviewerID", item_col="asin", time_col="unixReviewTime"
    )
    assert inter.users.tolist() == ["A1", "A1", "A2", "A2"]
    assert inter.items.tolist() == ["B01", "B02", "B01", "B03"]
    assert inter.times.tolist() == [1369699200, 1369699100, 1369699300, 1369699400]
    assert inter.lines.tolist() == [2, 5, 6, 8]  # where each record starts


def test_unclosed_quote_names_its_line(tmp_path):
    text = 'user_id,item_id,timestamp,note\nu,a,1,"x"\nu,b,2,"open\nu,c,3,y\n'
    path = write(tmp_path, "q.csv", text)
    with pytest.raises(DataError, match=r"line 3: broken quoting .*must end with one"):
        read_csv(path)


def test_decimal_timestamps_keep_their_exact_order(tmp_path):
    # float64 gives these three the same value; their true order is 2nd < 3rd < 1st.
    text = (
        "user_id,item_id,timestamp\nu,a,1609459200.1234567893\nu,b,1609459200.1234567891\nu,c,1609459200.1234567892\n"
    )
    times = read_csv(write(tmp_path, "dec.csv", text)).times
    assert float("1609459200.1234567891") == float("1609459200.1234567893")
    assert np.argsort(times, kind="stable").tolist() == [1, 2, 0]


def test_short_decimal_timestamps_become_scaled_integers(tmp_path):
    text = "user_id,item_id,timestamp\nu,a,1.5\nu,b,-1.25\nu,c,.5\nu,d,2\n"
    assert read_csv(write(tmp_path, "d.csv", text)).times.tolist() == [150, -125, 50, 200]


def test_iso_datetimes_and_file_order(tmp_path):
    text = "user_id,item_id,timestamp\nu,a,2021-01-01T00:00:01Z\nu,b,2021-01-01\n"
    path = write(tmp_path, "iso.csv", text)
    times = read_csv(path).times
    assert times[0] - times[1] == 1_000_000_000  # nanoseconds
    assert read_csv(path, time_col=None).times is None


def test_missing_column_lists_the_columns_found(tmp_path):
    path = write(tmp_path, "x.inter", ATOMIC)
    with pytest.raises(DataError, match="column.s. user not found") as err:
        read_atomic(path, user_col="user")
    assert "user_id, item_id, rating, timestamp" in str(err.value)
    assert str(path) in str(err.value)


@pytest.mark.parametrize("row, saw", [("u4\t1\t2\t3\t4", 5), ("u4\t1\t2", 3)])
def test_wrong_field_count_names_line(tmp_path, row, saw):
    path = write(tmp_path, "bad.inter", ATOMIC + "\n" + row + "\n")
    with pytest.raises(DataError, match=f"expected 4 fields .* found {saw}") as err:
        read_atomic(path)
    assert f"{path}, line 8:" in str(err.value)


def test_unparseable_timestamp_names_file_line_and_value(tmp_path):
    path = write(tmp_path, "t.csv", "user_id,item_id,timestamp\nu,a,12\n\nu,b,soon\n")
    with pytest.raises(DataError, match="line 4: timestamp 'soon'") as err:
        read_csv(path)
    assert str(path) in str(err.value)


def test_date_strings_like_yelp_sort_chronologically(tmp_path):
    text = (
        "user_id,business_id,date\n"
        "u,a,2016-07-12 23:36:20\nu,b,2014-3-1 10:00\nu,c,2016-07-12 23:36:19\n"
        "u,d,1510-03-01\n"
    )  # not padded; before 1677 (out of nanosecond range)
    times = read_csv(write(tmp_path, "yelp.csv", text), item_col="business_id", time_col="date").times
    assert np.argsort(times, kind="stable").tolist() == [3, 1, 2, 0]


def test_utc_offsets_are_compared_in_utc(tmp_path):
    text = "user_id,item_id,timestamp\nu,a,2021-01-01T01:00:00+02:00\nu,b,2021-01-01T00:00:00Z\n"
    times = read_csv(write(tmp_path, "tz.csv", text)).times
    assert times[1] - times[0] == 1_000_000_000 * 3600  # a is 23:00 UTC the day before


def test_utc_written_as_a_word_like_bigquery_exports(tmp_path):
    # `bq extract` writes TIMESTAMP columns as "2015-05-20 21:34:02.123456 UTC"; pandas refuses
    # the word, and seqrec called every such value "not a date-time like the other rows".
    text = (
        "user_id,item_id,timestamp\nu,a,2015-05-20 21:34:02.5 UTC\nu,b,2015-05-20 21:34:02 UTC\n"
        "u,c,2015-05-20T21:00:00Z\nu,d,2015-05-20 22:00:00GMT\nu,e,2015-05-20 23:34:02+02:00\n"
    )
    times = read_csv(write(tmp_path, "bq.csv", text)).times
    assert np.argsort(times, kind="stable").tolist() == [2, 1, 4, 0, 3]
    assert times[0] - times[1] == 500_000_000  # half a second, in UTC


def test_time_zone_name_is_named_with_the_fix(tmp_path):
    text = "user_id,item_id,timestamp\nu,a,2015-05-20 21:34:02 UTC\nu,b,2015-05-20 21:34:02 CET\n"
    path = write(tmp_path, "cet.csv", text)
    with pytest.raises(DataError, match=r"line 3: timestamp .* ends in the time zone name 'CET'.*UTC offset"):
        read_csv(path)


def test_time_zone_on_some_date_times_only_is_an_error(tmp_path):
    text = "user_id,item_id,when\nu,a,2021-01-01 00:30:00\nu,b,2021-01-01T01:00:00+02:00\nu,c,2021-01-01 02:00\n"
    path = write(tmp_path, "tz.csv", text)
    with pytest.raises(
        DataError,
        match=r"line 2: date-time '2021-01-01 00:30:00' has no time "
        r"zone, but line 3 .* has one.*every value in 'when'",
    ):
        read_csv(path, time_col="when")


@pytest.mark.parametrize("value", ["", "  "])
def test_empty_timestamp_says_empty(tmp_path, value):
    path = write(tmp_path, "t.csv", f"user_id,item_id,ts\nu,a,1\nu,b,{value}\nu,c,\n")
    with pytest.raises(DataError, match=r"line 3: the 'ts' field is empty .2 row.s. have no time"):
        read_csv(path, time_col="ts")


def test_a_missing_rating_column_names_the_rating_option(tmp_path):
    path = write(tmp_path, "r.csv", "user_id,item_id,score,timestamp\nu,a,5,1\n")
    with pytest.raises(
        DataError, match=r"column\(s\) rating not found.*Set dataset.rating_col to a name from the header"
    ) as err:
        read_csv(path, rating_col="rating")
    assert "user_col" not in str(err.value)


def test_a_header_read_with_the_wrong_separator_is_quoted_whole(tmp_path):
    # ML-1M's '::' read with ',': the one field must not be shown cut at its first ':' (a RecBole type)
    path = write(tmp_path, "t.csv", "user_id::item_id::rating::timestamp\n1::2::5::978300760\n")
    with pytest.raises(
        DataError, match=r"the header \(line 1\) has user_id::item_id::rating::timestamp\..*dataset.sep='::'"
    ):
        read_csv(path)


def test_comment_lines_above_the_header_are_named_not_taken_for_a_separator(tmp_path):
    path = write(tmp_path, "t.csv", "# exported 2024\nuser_id,item_id,timestamp\nu,a,1\n")
    with pytest.raises(DataError, match=r"line 1: '# exported 2024' looks like a comment line.*grep -v") as err:
        read_csv(path)
    assert "dataset.sep" not in str(err.value)
    path = write(tmp_path, "t.csv", "#user_id,item_id,timestamp\nu,a,1\n")  # a header marked with '#'
    with pytest.raises(DataError, match=r"line 1: the header starts with '#'.*Delete the '#'"):
        read_csv(path)


def test_digits_other_than_0_to_9_in_a_timestamp_are_named_not_a_traceback(tmp_path):
    # Python's \\d matches full-width and Arabic-Indic digits; pandas cannot convert them
    path = write(tmp_path, "t.csv", "user_id,item_id,timestamp\nu,a,5\nu,b,１２３\nu,c,٣\n")
    with pytest.raises(DataError, match=r"line 3: timestamp '１２３' is written with digits other than 0-9.*2 such"):
        read_csv(path)


def test_a_number_among_dates_is_the_row_blamed(tmp_path):
    text = "user_id,item_id,timestamp\nu,a,2014-03-01\nu,b,2014-03-02\nu,c,20140305\nu,d,2014-03-07\n"
    with pytest.raises(DataError, match=r"line 4: timestamp '20140305' is a number, but most rows are not"):
        read_csv(write(tmp_path, "t.csv", text))


def test_a_decimal_comma_is_named(tmp_path):
    path = write(tmp_path, "t.csv", "user_id;item_id;timestamp\nu;a;978300760,5\nu;b;978300761,25\n")
    with pytest.raises(
        DataError, match=r"line 2: timestamp '978300760,5' is a number with a decimal comma.*'978300760.5'"
    ):
        read_csv(path, sep=";")


def test_slash_dates_are_refused_as_ambiguous_not_as_unlike_the_other_rows(tmp_path):
    # every row is a US date: the message says why (day or month first), not "unlike the others"
    path = write(tmp_path, "t.csv", "user_id,item_id,timestamp\nu,a,03/01/2014\nu,b,03/02/2014 10:00\n")
    with pytest.raises(
        DataError, match="line 2: timestamp '03/01/2014' is a date written day/month or month/day"
    ) as err:
        read_csv(path)
    assert "like the other rows" not in str(err.value) and "time_col: null" in str(err.value)
    path = write(tmp_path, "t.csv", "user_id,item_id,timestamp\nu,a,2014-03-01\nu,b,yesterday\n")
    with pytest.raises(DataError, match="line 3: timestamp 'yesterday' is not a date-time like the other rows"):
        read_csv(path)


def test_seconds_and_milliseconds_in_one_column_are_reported(tmp_path, caplog):
    # Amazon 2018 (seconds) joined with Amazon 2023 (milliseconds): b (2014) sorted after a
    # (2015) without a word.
    text = "user_id,item_id,timestamp\nu,a,1431000000\nu,b,1400000000000\nu,c,1431000001\n"
    times = read_csv(write(tmp_path, "units.csv", text)).times
    assert times.tolist() == [1431000000, 1400000000000, 1431000001]  # kept as given
    assert "seconds on 2 row(s) (e.g. line 2: 1431000000) and in milliseconds on 1 row(s) (e.g. line 3" in caplog.text
    caplog.clear()
    read_csv(write(tmp_path, "units.csv", text.replace("1400000000000", "1400000000000.5")))
    assert "in milliseconds on 1 row(s) (e.g. line 3: 1400000000000.5)" in caplog.text


def test_one_unit_gives_no_unit_warning(tmp_path, caplog):
    read_csv(write(tmp_path, "ms.csv", "user_id,item_id,timestamp\nu,a,1\nu,b,1400000000000\n"))
    assert "milliseconds" not in caplog.text


def test_float_negative_and_scientific_timestamps_order_exactly(tmp_path):
    text = "user_id,item_id,timestamp\nu,a,978300760.0\nu,b,-5\nu,c,9.783007605e8\nu,d,978300759.5\n"
    times = read_csv(write(tmp_path, "f.csv", text)).times
    assert np.argsort(times, kind="stable").tolist() == [1, 3, 0, 2]


def test_rows_of_separators_only_are_skipped_like_blank_lines(tmp_path):
    text = "user_id,item_id,timestamp\r\nu,a,1\r\n,,\r\nu,b,2\r\n, ,\r\n,,\r\n"  # Excel
    inter = read_csv(write(tmp_path, "x.csv", text))
    assert inter.items.tolist() == ["a", "b"] and inter.lines.tolist() == [2, 4]


def test_files_joined_with_their_headers_and_boms(tmp_path, caplog):
    # `cat a.csv b.csv` of two exports with a BOM and a header each: the second header used to
    # become an interaction of user 'user_id' (time_col null) and the BOM part of user 'v'.
    part = "\ufeffuser_id,item_id\r\n{}"
    text = part.format("u,a\r\nu,b\r\n") + part.format("v,c\r\nu,c\r\n") + part.format("v,d\r\n")
    inter = read_csv(write(tmp_path, "joined.csv", text), time_col=None)
    assert inter.users.tolist() == ["u", "u", "v", "u", "v"]
    assert inter.items.tolist() == ["a", "b", "c", "c", "d"]
    assert inter.lines.tolist() == [2, 3, 5, 6, 8]
    assert "skipped 2 line(s) that repeat the header (line 1): line(s) 4, 7" in caplog.text


def test_empty_item_is_an_error(tmp_path):
    path = write(tmp_path, "e.csv", "user_id,item_id,timestamp\nu,a,1\nu, ,2\n")
    with pytest.raises(DataError, match="line 3: the 'item_id' field is empty"):
        read_csv(path)


# --- header problems: the message says the likely cause ---------------------------------------


@pytest.mark.parametrize(
    "name, text, sep, needle",
    [
        # MovieLens-1M ratings.dat and Amazon ratings-only CSVs have no header row
        (
            "ratings.dat",
            "1::1193::5::978300760\n1::661::3::978302109\n",
            "::",
            "line looks like data, not a header.*sed -i '1i user_id::item_id::rating::timestamp'",
        ),
        (
            "ratings_Beauty.csv",
            "A39HTATAQ9V7YF,0205616461,5.0,1369699200\n",
            ",",
            "has no header row.*user_id,item_id,rating,timestamp",
        ),
        # a TSV or .inter file read with the comma default, a ;-separated export
        (
            "x.inter",
            "user_id:token\titem_id:token\ttimestamp:float\nu\ti\t1\n",
            ",",
            r"is one field with sep=','; the file seems to be separated by '\\t': set dataset.sep='\\t'",
        ),
        ("x.csv", "user_id;item_id;timestamp\nu;i;1\n", ",", "set dataset.sep=';'"),
        # other spellings of the names
        (
            "x.csv",
            "UserID,ItemID,Timestamp\nu,i,1\n",
            ",",
            "closest: dataset.user_col=UserID dataset.item_col=ItemID dataset.time_col=Timestamp",
        ),
    ],
)
def test_missing_columns_say_the_likely_cause(tmp_path, name, text, sep, needle):
    path = write(tmp_path, name, text)
    with pytest.raises(DataError, match=needle) as err:
        read_csv(path, sep=sep)
    assert str(err.value).startswith(f"{path}: column(s) ")


def test_json_lines_get_a_conversion_recipe(tmp_path):
    text = '{"reviewerID": "A1", "asin": "0001", "reviewText": "a, b", "unixReviewTime": 5}\n'
    path = write(tmp_path, "Beauty_5.json", text)
    with pytest.raises(DataError, match=r"line 1: the file looks like JSON.*pd.read_json"):
        read_csv(path, user_col="reviewerID", item_col="asin", time_col="unixReviewTime")


def test_header_only_file_says_no_data_rows(tmp_path):
    path = write(tmp_path, "h.csv", "user_id,item_id,timestamp\r\n\r\n")
    with pytest.raises(DataError, match="has a header .line 1. but no data rows"):
        read_csv(path)


def test_repeated_column_name_is_an_error(tmp_path):
    path = write(tmp_path, "d.csv", "user_id,item_id,user_id,timestamp\nu,i,v,1\n")
    with pytest.raises(DataError, match="names column 'user_id' more than once"):
        read_csv(path)


def test_extra_columns_and_typed_token_seq_are_ignored(tmp_path):
    text = (
        "user_id:token\titem_id:token\trating:float\ttimestamp:float\tgenre:token_seq\n"
        "u\t1\t4.0\t978300760.0\tAction Comedy\nu\t2\t3.0\t978300759.0\t\n"
    )
    inter = read_atomic(write(tmp_path, "ml.inter", text))
    assert inter.items.tolist() == ["1", "2"] and inter.times[1] < inter.times[0]


def test_token_seq_user_or_item_column_is_refused(tmp_path):
    # RecBole's sequential benchmark files hold a whole history per row in a token_seq field; read
    # as an item column, "1 2 3" became one item without a word.
    text = "user_id:token\titem_id_list:token_seq\ttimestamp:float\nu1\t1 2 3\t5\nu2\t2 3\t6\n"
    path = write(tmp_path, "seq.inter", text)
    with pytest.raises(
        DataError, match=r"types column 'item_id_list' \(item_col\) as token_seq.*one interaction per row"
    ):
        read_atomic(path, item_col="item_id_list")


def test_an_id_too_long_for_the_id_table_names_line_and_option(tmp_path):
    # 600 rows x one 1,000,000-character "item" (a text column given as item_col) x 4 bytes: the
    # fixed-width id array would take 2.2 GiB; it used to be allocated (or die trying).
    rows = [f"u{k % 20},i{k % 30},{k}" for k in range(600)]
    rows[7] = "u7,<p>" + "a" * 1_000_000 + ",7"
    path = write(tmp_path, "long.csv", "user_id,item_id,timestamp\n" + "\n".join(rows) + "\n")
    with pytest.raises(DataError, match=r"line 9: the 'item_id' field is 1,000,003 characters long .*2 GiB.*item_col"):
        read_csv(path)


@pytest.mark.parametrize("sep", [",", ";", "\t"])
def test_excel_sep_line_above_the_header_is_skipped(tmp_path, sep):
    # Excel writes and honours a first line "sep=;"; it was taken for the header ("column(s)
    # user_id, item_id, timestamp not found; the header has sep=, ").
    text = f"sep={sep}\r\n" + "user_id,item_id,timestamp\r\nu,a,2\r\nu,b,1\r\n".replace(",", sep)
    inter = read_csv(write(tmp_path, "excel.csv", text), sep=sep)
    assert inter.items.tolist() == ["a", "b"] and inter.lines.tolist() == [3, 4]


def test_excel_sep_line_naming_another_separator_says_which(tmp_path):
    path = write(tmp_path, "excel.csv", "sep=;\nuser_id;item_id;timestamp\nu;a;1\n")
    with pytest.raises(DataError, match=r"line 1: the file says its separator is ';'.*Set dataset.sep=';'"):
        read_csv(path)


def test_empty_file_is_an_error(tmp_path):
    with pytest.raises(DataError, match="is empty"):
        read_csv(write(tmp_path, "empty.csv", "\n\n"))


# --- file encodings and containers ------------------------------------------------------------

LOG = "user_id,item_id,timestamp\nu,007,2\nu,7,1\n"


@pytest.mark.parametrize(
    "name, compress",
    [
        ("log.csv.gz", gzip.compress),
        ("log.csv.bz2", bz2.compress),
        ("log.xz", lzma.compress),
        ("log.csv", gzip.compress),  # recognised by content, not by name
    ],
)
def test_compressed_files_are_read(tmp_path, name, compress):
    path = tmp_path / name
    path.write_bytes(compress(LOG.encode()))
    inter = read_csv(path)
    assert inter.items.tolist() == ["007", "7"] and inter.times.tolist() == [2, 1]


def test_utf16_with_bom_is_read(tmp_path):
    path = tmp_path / "excel.txt"
    path.write_bytes(LOG.replace(",", "\t").replace("\n", "\r\n").encode("utf-16"))
    inter = read_csv(path, sep="\t")
    assert inter.users.tolist() == ["u", "u"] and inter.items.tolist() == ["007", "7"]


def test_truncated_gzip_is_named(tmp_path):
    path = tmp_path / "log.csv.gz"
    path.write_bytes(gzip.compress(LOG.encode() * 50)[:30])
    with pytest.raises(DataError, match=f"{path} is a truncated or corrupt gzip file"):
        read_csv(path)


def test_zip_archive_lists_its_members(tmp_path):
    path = tmp_path / "ml.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("ml/ratings.csv", LOG)
    with pytest.raises(DataError, match=r"ml.zip is a zip archive holding ml/ratings.csv.*Unzip"):
        read_csv(path)


def test_binary_file_is_not_reported_as_an_encoding_problem(tmp_path):
    path = tmp_path / "log.parquet"
    path.write_bytes(b"PAR1\x15\x04\n\x00\x00\x1c")
    with pytest.raises(DataError, match="line 2: the file contains NUL bytes, so it is no text"):
        read_csv(path)


def test_latin1_file_names_line_and_iconv(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("user_id,item_id,timestamp\nu,a,1\nJos\xe9,b,2\n".encode("latin-1"))
    with pytest.raises(DataError, match="line 3: the file is not valid UTF-8.*iconv -f latin1"):
        read_csv(path)


def test_directory_is_named_with_its_files(tmp_path):
    (tmp_path / "ratings.csv").write_text(LOG)
    with pytest.raises(
        DataError,
        match=f"{tmp_path} is a directory .it holds ratings.csv.; dataset.path must name the interaction file",
    ):
        read_csv(tmp_path)


def test_s3rec_user_line_without_items_is_skipped_with_a_warning(tmp_path, caplog):
    path = write(tmp_path, "Gaps.txt", "1 2 3\n2\n3 4 5\n")
    with caplog.at_level("WARNING"):
        inter = read_s3rec(path)
    assert inter.users.tolist() == ["1", "1", "3", "3"] and inter.lines.tolist() == [1, 1, 3, 3]
    assert "skipped 1 user line(s) with no items: line 2 (user 2)" in caplog.text
