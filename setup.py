"""Packaging for llmplay: every setting comes from settings.ini (nbdev 2)."""
from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
cfg = cfg['DEFAULT']
reqs = lambda key: cfg.get(key, '').split()

licenses = {'apache2': ('Apache Software License 2.0', 'OSI Approved :: Apache Software License')}
statuses = ['1 - Planning', '2 - Pre-Alpha', '3 - Alpha', '4 - Beta', '5 - Production/Stable']
lic = licenses[cfg['license']]
playground, course, dev = reqs('playground_requirements'), reqs('course_requirements'), reqs('dev_requirements')
export, docs = reqs('export_requirements'), reqs('docs_requirements')

setuptools.setup(
    name=cfg['lib_name'],
    version=cfg['version'],
    description=cfg['description'],
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    url=cfg['git_url'],
    author=cfg['author'],
    author_email=cfg['author_email'],
    license=lic[0],
    keywords=cfg['keywords'],
    classifiers=[
        'Development Status :: ' + statuses[int(cfg['status']) - 1],
        'Intended Audience :: ' + cfg['audience'],
        'License :: ' + lic[1],
        'Natural Language :: ' + cfg['language'],
        'Programming Language :: Python :: 3',
        'Topic :: Scientific/Engineering :: Artificial Intelligence',
    ],
    python_requires='>=' + cfg['min_python'],
    packages=setuptools.find_packages(include=['llmplay', 'llmplay.*']),
    include_package_data=True,
    package_data={'llmplay': ['*.py', '*.css', 'data/*.xz', 'data/*.md']},  # chat.css; the recorded Wikipedia
    install_requires=reqs('requirements'),
    extras_require={
        'playground': playground,          # streamlit chat, ipywidgets sampler, plots
        'export': export,                  # transformers: load and check an exported model
        'course': playground + course + export,  # all the notebooks import, to run them in JupyterLab
        'docs': docs,                      # the course website
        'dev': playground + course + export + docs + dev,  # the course, the website, tests, browser tests, wheels
    },
    entry_points={'console_scripts': reqs('console_scripts'), 'nbdev': ['llmplay=llmplay._modidx:d']},
    zip_safe=False,
)
