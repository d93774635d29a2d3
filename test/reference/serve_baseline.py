#!/usr/bin/env python3
"""Python baseline for `unet serve` (scripts/serve-bench.mjs): the same UNet (reference/model.py)
with the same weights (our checkpoint, loaded as heldout.py does) behind the standard library's
ThreadingHTTPServer, answering the Open Inference Protocol v2 infer request `unet serve` answers:
POST /v2/models/{name}/infer, one FP32 [N, C, H, W] input, outputs "logits" and/or "mask". No
batching across requests: each request is one forward pass in its own thread; with --serialize,
one pass at a time (a lock), as a single-model server usually guards its model. GET
/v2/health/ready says when it is up. Prints `Listening on http://HOST:PORT (...)` once bound."""
import argparse
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import torch

if __package__ in (None, ''):
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    __package__ = 'reference'  # noqa: A001

from .heldout import load  # noqa: E402

INFER = re.compile(r'^/v2/models/([^/]+)/infer$')


def make_handler(name, model, n_channels, n_classes, threshold, lock):
    def forward(x):
        with lock, torch.inference_mode():
            logits = model(x)
            mask = (logits.squeeze(1).sigmoid() > threshold) if n_classes == 1 else logits.argmax(1)
            return logits, mask.to(torch.uint8)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = 'HTTP/1.1'  # keep-alive, as the Node server

        def log_message(self, *args):
            pass

        def reply(self, status, obj):
            body = json.dumps(obj, separators=(',', ':')).encode()
            self.send_response(status)
            self.send_header('Content-Type', 'application/json')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            if self.path in ('/v2/health/live', '/v2/health/ready'):
                self.reply(200, {'live': True} if self.path.endswith('live') else {'ready': True})
            else:
                self.reply(404, {'error': f'no route {self.path}'})

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get('Content-Length') or 0))
            m = INFER.match(self.path)
            if not m or m.group(1) != name:
                return self.reply(404, {'error': f'no route {self.path}'})
            try:
                req = json.loads(body)
                inp = req['inputs'][0]
                n, c, h, w = inp['shape']
                if inp['datatype'] != 'FP32' or c != n_channels:
                    raise ValueError(f'want FP32 [N, {n_channels}, H, W]')
                x = torch.tensor(inp['data'], dtype=torch.float32).reshape(n, c, h, w)
                want = [o['name'] for o in req.get('outputs') or [{'name': 'logits'}, {'name': 'mask'}]]
            except (ValueError, KeyError, TypeError, RuntimeError) as e:
                return self.reply(400, {'error': str(e)})
            logits, mask = forward(x)
            outs = []
            for o in want:
                if o == 'logits':
                    outs.append({'name': o, 'datatype': 'FP32', 'shape': list(logits.shape), 'data': logits.flatten().tolist()})
                else:
                    outs.append({'name': o, 'datatype': 'UINT8', 'shape': list(mask.shape), 'data': mask.flatten().tolist()})
            res = {'model_name': name, 'model_version': '1', 'outputs': outs}
            if 'id' in req:
                res['id'] = req['id']
            self.reply(200, res)

    return Handler


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('-m', '--model', required=True, help='a unet-ts checkpoint (or a reference state_dict)')
    p.add_argument('--name', default=None, help="the model's name in the URL (default: the file's stem)")
    p.add_argument('--host', default='127.0.0.1')
    p.add_argument('--port', type=int, default=8001, help='0: any free one')
    p.add_argument('--threads', type=int, default=os.cpu_count(), help='torch.set_num_threads (intra-op)')
    p.add_argument('-t', '--mask-threshold', type=float, default=0.5)
    p.add_argument('--serialize', action='store_true', help='one forward pass at a time (a lock around the model)')
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    model, _values, n_classes = load(a.model)
    model.eval()
    name = a.name or os.path.splitext(os.path.basename(a.model))[0]
    lock = threading.Lock() if a.serialize else _NoLock()
    server = _Server((a.host, a.port), make_handler(name, model, model.n_channels, n_classes, a.mask_threshold, lock))
    host, port = server.server_address[:2]
    print(f'Listening on http://{host}:{port} (model {name}: UNet channels={model.n_channels} classes={n_classes}; '
          f'torch {torch.__version__}, {torch.get_num_threads()} intra-op threads; '
          f'{"one forward at a time" if a.serialize else "a forward per request thread"})', flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    server.server_close()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the listen backlog; socketserver's 5 resets connections at 16 clients


class _NoLock:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


if __name__ == '__main__':
    main()
