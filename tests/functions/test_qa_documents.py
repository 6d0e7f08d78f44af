"""QA over documents in S3: moto's server over real HTTP behind the QA function."""

from __future__ import annotations

import json

import pytest

from tests.support.documents import (
    FACT,
    QUESTION,
    answer_like_a_reader,
    long_document,
    minimal_pdf,
)
from tests.support.events import function_url_event, lambda_context, response_json
from tests.support.moto import moto_client

ALLOWED = "qa-documents-allowed"
OTHER = "qa-documents-other"


@pytest.fixture
def s3(moto_url: str):
    client = moto_client("s3", moto_url)
    for bucket in (ALLOWED, OTHER):
        client.create_bucket(
            Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
    yield client
    for bucket in (ALLOWED, OTHER):
        for item in client.list_objects_v2(Bucket=bucket).get("Contents", []):
            client.delete_object(Bucket=bucket, Key=item["Key"])
        client.delete_bucket(Bucket=bucket)


@pytest.fixture
def load_qa(load_handler, moto_url, s3):
    def load(**settings: str):
        settings.setdefault("QA_DOCUMENT_BUCKETS", ALLOWED)
        return load_handler("qa.handler", AWS_ENDPOINT_URL_S3=moto_url, **settings)

    return load


def ask(qa, body: object) -> dict:
    return qa.handler(function_url_event(json.dumps(body)), lambda_context())


def error_of(response: dict) -> dict:
    return response_json(response)["error"]


def test_a_100_kb_text_object_is_answered_by_map_reduce(load_qa, s3, fake_endpoint, capsys):
    qa = load_qa()
    s3.put_object(Bucket=ALLOWED, Key="notes/minutes.txt", Body=long_document().encode())
    fake_endpoint.backend.respond_with(answer_like_a_reader)

    response = ask(qa, [QUESTION, [f"s3://{ALLOWED}/notes/minutes.txt"]])

    assert response["statusCode"] == 200, response["body"]
    body = response_json(response)
    assert body["chain_type"] == "map_reduce"
    assert body["chunks"] > 20
    assert "4172" in body["answer"]
    # The documents' content stays out of the logs (log_prompts is off).
    assert "committee met" not in capsys.readouterr().out


def test_a_pdf_object_and_an_inline_text_are_read_together(load_qa, s3, fake_endpoint):
    qa = load_qa()
    s3.put_object(Bucket=ALLOWED, Key="report.pdf", Body=minimal_pdf(FACT, "Filed in spring."))

    response = ask(
        qa, {"question": QUESTION, "documents": [f"s3://{ALLOWED}/report.pdf", "Plain text."]}
    )

    assert response["statusCode"] == 200, response["body"]
    assert response_json(response)["chain_type"] == "stuff"
    prompt = fake_endpoint.last_request["messages"][0]["content"]
    assert FACT in prompt
    assert "Filed in spring." in prompt
    assert "Plain text." in prompt


def test_a_bucket_not_allowed_is_403_without_asking_s3(load_qa, s3, fake_endpoint):
    qa = load_qa()
    # The bucket does not exist: had the function asked S3, it would have heard NoSuchBucket.
    response = ask(qa, [QUESTION, ["s3://no-such-bucket-anywhere/doc.txt"]])
    assert response["statusCode"] == 403
    error = error_of(response)
    assert error["code"] == "document_not_allowed"
    assert "s3://no-such-bucket-anywhere/doc.txt" in error["message"]
    assert fake_endpoint.invocations == []


def test_an_existing_bucket_not_allowed_is_403(load_qa, s3):
    s3.put_object(Bucket=OTHER, Key="doc.txt", Body=b"secret")
    response = ask(load_qa(), [QUESTION, [f"s3://{OTHER}/doc.txt"]])
    assert response["statusCode"] == 403
    assert error_of(response)["code"] == "document_not_allowed"


def test_s3_documents_are_refused_when_no_bucket_is_configured(load_qa, s3):
    s3.put_object(Bucket=ALLOWED, Key="doc.txt", Body=b"text")
    response = ask(load_qa(QA_DOCUMENT_BUCKETS=""), [QUESTION, [f"s3://{ALLOWED}/doc.txt"]])
    assert response["statusCode"] == 403
    assert "S3 documents are off" in error_of(response)["message"]


def test_a_missing_key_is_404_naming_it(load_qa, s3, fake_endpoint):
    response = ask(load_qa(), [QUESTION, [f"s3://{ALLOWED}/absent.txt"]])
    assert response["statusCode"] == 404
    error = error_of(response)
    assert error["code"] == "document_not_found"
    assert f"s3://{ALLOWED}/absent.txt" in error["message"]
    assert fake_endpoint.invocations == []


def test_an_object_over_the_byte_limit_is_413_naming_it(load_qa, s3, fake_endpoint):
    s3.put_object(Bucket=ALLOWED, Key="big.txt", Body=b"x " * 15_000)
    response = ask(load_qa(QA_MAX_DOCUMENT_BYTES="20000"), [QUESTION, [f"s3://{ALLOWED}/big.txt"]])
    assert response["statusCode"] == 413
    error = error_of(response)
    assert error["code"] == "request_too_large"
    assert f"s3://{ALLOWED}/big.txt is 30000 bytes" in error["message"]
    assert "QA_MAX_DOCUMENT_BYTES" in error["message"]
    assert fake_endpoint.invocations == []


def test_inline_text_counts_against_the_limit_before_the_object(load_qa, s3):
    s3.put_object(Bucket=ALLOWED, Key="small.txt", Body=b"y" * 8000)
    response = ask(
        load_qa(QA_MAX_DOCUMENT_BYTES="10000"),
        [QUESTION, ["z" * 5000, f"s3://{ALLOWED}/small.txt"]],
    )
    assert response["statusCode"] == 413
    assert "5000 bytes are left" in error_of(response)["message"]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (b"\xff\xfe\x00binary\x00\x9c", "neither UTF-8 text nor a PDF"),
        (b"%PDF-1.4\nnot really a pdf", "PDF that could not be read"),
        (minimal_pdf(), "PDF without extractable text"),
    ],
)
def test_unreadable_content_is_422_naming_the_document(load_qa, s3, body, expected):
    s3.put_object(Bucket=ALLOWED, Key="odd.bin", Body=body)
    response = ask(load_qa(), [QUESTION, [f"s3://{ALLOWED}/odd.bin"]])
    assert response["statusCode"] == 422
    error = error_of(response)
    assert error["code"] == "document_unreadable"
    assert f"s3://{ALLOWED}/odd.bin" in error["message"]
    assert expected in error["message"]


@pytest.mark.parametrize(
    "uri", ["s3://", "s3://bucket-only", "s3://Bad_Bucket/key", f"s3://{ALLOWED}/"]
)
def test_a_malformed_uri_is_400(load_qa, s3, uri, fake_endpoint):
    response = ask(load_qa(), [QUESTION, [uri]])
    assert response["statusCode"] == 400
    assert "s3://bucket/key" in error_of(response)["message"]
